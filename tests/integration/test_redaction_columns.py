"""Every text-bearing column of every table a migrated store has is declared for redaction."""

from __future__ import annotations

import re

import pytest

from hub.redaction.columns import DECLARATIONS, SHAPES, TEXT_TYPES

pytestmark = [pytest.mark.clickhouse]

#: Engines that hold no rows of their own (they read tables that are declared).
_VIEWS = ("View", "MaterializedView", "LiveView", "WindowView")


def _columns(store) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in store.query(
        "SELECT c.table, c.name, c.type FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = {db:String} AND t.engine NOT IN {views:Array(String)} ORDER BY c.table, c.position",
        parameters={"db": store.database, "views": list(_VIEWS)}).result_rows]


def test_every_text_column_of_every_table_is_declared(store):
    columns = _columns(store)
    text = [(t, c, ty) for t, c, ty in columns if TEXT_TYPES.search(ty) and ty != "UUID"]
    print(f"\n{len(text)} text-bearing columns in {len({t for t, _, _ in text})} tables, all declared")
    missing = [f"{t}.{c} ({ty})" for t, c, ty in text if c not in DECLARATIONS.get(t, {})]
    assert not missing, "columns without a redaction declaration (hub/redaction/columns.py): " + ", ".join(missing)
    # and nothing declared that the store does not have (a renamed column must be declared anew)
    present = {(t, c) for t, c, _ in columns}
    stale = [f"{t}.{c}" for t, cols in DECLARATIONS.items() for c in cols if (t, c) not in present]
    assert not stale, "declared but not in the store: " + ", ".join(stale)


def test_a_new_text_column_is_caught(store):
    store.command(f"CREATE TABLE {store.database}.notes_scratch (id UInt64, who LowCardinality(String), "
                  f"what Array(Map(String, String))) ENGINE = MergeTree ORDER BY id")
    try:
        undeclared = [(t, c) for t, c, ty in _columns(store) if TEXT_TYPES.search(ty)
                      and c not in DECLARATIONS.get(t, {})]
        assert undeclared == [("notes_scratch", "who"), ("notes_scratch", "what")]
    finally:
        store.command(f"DROP TABLE {store.database}.notes_scratch")


def test_shapes_are_valid_regexes():
    for name, shape in SHAPES.items():
        assert re.compile(shape.pattern).fullmatch("") is not None or name in ("hex", "unit"), name
