"""Migrations apply cleanly, in order, once, on an empty store of the real engine."""

from __future__ import annotations

import re

import pytest

from hub.storage.client import Store
from hub.storage.migrations import MIGRATIONS_DIR, discover, migrate


def test_migration_files_have_unique_numbered_names():
    names = [p.name for p in sorted(MIGRATIONS_DIR.glob("*.sql"))]
    assert names, "no migration files found"
    numbers = [int(n[:4]) for n in names]
    assert all(re.match(r"^\d{4}_[a-z0-9_]+\.sql$", n) for n in names), names
    assert len(numbers) == len(set(numbers)), "two migrations share a number"
    assert numbers == sorted(numbers)
    assert [m.number for m in discover()] == numbers


@pytest.mark.clickhouse
def test_all_migrations_apply_on_an_empty_store_and_are_recorded(hub_settings, chdb_dir):
    from tests.fixtures_clickhouse import store_for

    # store_for migrates; check what it recorded and that a second run applies nothing.
    store: Store = store_for(hub_settings)
    recorded = store.query(f"SELECT number, name FROM {store.database}.schema_migrations ORDER BY number").result_rows
    assert [r[0] for r in recorded] == [m.number for m in discover()]
    assert migrate(store, hub_settings) == []
    tables = {r[0] for r in store.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": store.database}).result_rows}
    assert {"schema_migrations", "sink_ledger", "requests", "dead_letters"} <= tables


@pytest.mark.clickhouse
def test_tables_that_the_sink_deduplicates_keep_a_deduplication_window(store):
    for table in ("requests", "dead_letters", "sink_ledger"):
        ddl = store.scalar(f"SHOW CREATE TABLE {store.database}.{table}")
        assert "non_replicated_deduplication_window" in ddl, table
