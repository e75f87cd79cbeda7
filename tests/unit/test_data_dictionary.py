"""docs/sql.md's data dictionary lists every table and column the migrations create, each table
with a description (regenerate with ``python -m hub.sql.dictionary``)."""

from __future__ import annotations

import pytest

import re

from hub.sql.dictionary import DOC, END, START, TABLES, columns, documented

pytestmark = pytest.mark.clickhouse

REGENERATE = "run `python -m hub.sql.dictionary` to regenerate docs/sql.md"


def documented_types(text: str) -> dict[tuple[str, str], str]:
    """(table, column) -> type, as the dictionary in ``text`` lists them."""
    section = text.split(START, 1)[1].split(END, 1)[0]
    out: dict[tuple[str, str], str] = {}
    table = None
    for line in section.splitlines():
        if m := re.match(r"### `([^`]+)`", line):
            table = m.group(1)
        elif (m := re.match(r"\| `([^`]+)` \| `([^`]*)` \|", line)) and table is not None:
            out[(table, m.group(1))] = m.group(2)
    return out


def differences(stored: list[tuple[str, str, str]], text: str) -> list[str]:
    """Each way the dictionary in ``text`` and the store's (table, column, type) disagree, one sentence each."""
    store_types = {(t, c): ty for t, c, ty in stored}
    doc_types = documented_types(text)
    out = [f"{t}.{c} ({ty}) is in the store but not in docs/sql.md"
           for (t, c), ty in store_types.items() if (t, c) not in doc_types]
    out += [f"{t}.{c} is in docs/sql.md but the store has no such column"
            for (t, c) in doc_types if (t, c) not in store_types]
    out += [f"{t}.{c} is documented as {doc_types[(t, c)]} but the store has {ty}"
            for (t, c), ty in store_types.items() if (t, c) in doc_types and doc_types[(t, c)] != ty]
    return out


def test_the_dictionary_lists_exactly_the_stores_columns_with_their_types(store):
    stored = columns(store)
    found = differences(stored, DOC.read_text())
    assert not found, REGENERATE + ":\n" + "\n".join(found)
    assert len(documented_types(DOC.read_text())) == len(stored)


def test_a_documented_column_the_store_lacks_and_a_wrong_type_are_named(store):
    text = DOC.read_text()
    stored = columns(store)
    table, column, type_ = next(c for c in stored if c[:2] == ("requests", "status"))
    entry = f"| `{column}` | `{type_}` |"
    assert text.count(entry) >= 1
    head, rest = text.split("### `requests`", 1)
    doctored = head + "### `requests`" + rest.replace(entry, f"| `{column}` | `String` |\n| `tenant` | `String` |", 1)
    assert differences(stored, doctored) == [
        "requests.tenant is in docs/sql.md but the store has no such column",
        f"requests.status is documented as String but the store has {type_}"]


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
