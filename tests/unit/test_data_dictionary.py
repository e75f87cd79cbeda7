"""docs/sql.md's data dictionary lists every table and column the migrations create, each table
with a description (regenerate with ``python -m hub.sql.dictionary``)."""

from __future__ import annotations

import pytest

from hub.sql.dictionary import TABLES, columns, documented

pytestmark = pytest.mark.clickhouse


def test_every_table_and_column_of_the_migrations_is_in_the_dictionary(store):
    expected: dict[str, set[str]] = {}
    for table, column, _ in columns(store):
        expected.setdefault(table, set()).add(column)
    assert len(expected) > 10
    listed = documented()
    missing = {t: sorted(c - listed.get(t, set())) for t, c in expected.items() if c - listed.get(t, set())}
    assert missing == {}, "run `python -m hub.sql.dictionary` to regenerate docs/sql.md"
    assert sorted(set(listed) - set(expected)) == []  # nothing listed that the store does not have
    assert sorted(t for t in expected if t not in TABLES) == []
