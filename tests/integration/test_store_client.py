"""The store client (``hub.storage.client.Store``) against the real engine (chDB)."""

from __future__ import annotations

import gc
import weakref

import pytest

pytestmark = [pytest.mark.clickhouse]


class Rows(list):
    """A list of rows that can be watched with a weak reference."""


def test_inserted_rows_are_freed_as_soon_as_the_caller_drops_them(store):
    # clickhouse-connect's insert context sits in a reference cycle; if the store left the rows in
    # it, they would live on until the cyclic collector ran (the worker's long pauses).
    store.command(f"CREATE TABLE {store.database}.freed (k UInt32, v String) ENGINE = MergeTree ORDER BY k")
    rows = Rows([(i, f"v{i}") for i in range(1000)])
    watch = weakref.ref(rows)
    gc.disable()
    try:
        store.insert(f"{store.database}.freed", rows, ("k", "v"), token="freed-1")
        del rows
        assert watch() is None
    finally:
        gc.enable()
    assert store.scalar(f"SELECT count() FROM {store.database}.freed") == 1000


def test_column_types_are_looked_up_again_after_a_table_changes(store):
    table = f"{store.database}.changing"
    store.command(f"CREATE TABLE {table} (k UInt32, v UInt32) ENGINE = MergeTree ORDER BY k")
    store.insert(table, [(1, 7)], ("k", "v"))
    store.command(f"ALTER TABLE {table} MODIFY COLUMN v String")
    store.insert(table, [(2, "seven")], ("k", "v"))
    assert store.query(f"SELECT k, v FROM {table} ORDER BY k").result_rows == [(1, "7"), (2, "seven")]


def test_a_failed_insert_is_reported_as_not_stored_and_the_next_one_works(store):
    from hub.errors import StoreRejected

    table = f"{store.database}.strict"
    store.command(f"CREATE TABLE {table} (k UInt32) ENGINE = MergeTree ORDER BY k")
    with pytest.raises(StoreRejected):  # the rows' fault: permanent, not retried as an outage
        store.insert(table, [("not a number",)], ("k",))
    store.insert(table, [(3,)], ("k",))
    assert store.scalar(f"SELECT sum(k) FROM {table}") == 3
