"""The ``store`` fixture's database (a copy of a migrated template) equals a store migrated from
scratch: the same tables and views with the same definitions, columns, comments and migration
records. Tests that rely on "every migration applied" through the fixture rely on this."""

from __future__ import annotations

import uuid

import pytest

from hub.storage.client import Store
from hub.storage.migrations import migrate
from tests.fixtures_clickhouse import migrated_copy, store_for

pytestmark = [pytest.mark.clickhouse]


def _schema(store: Store) -> dict[str, list]:
    """Everything about the database's tables that a migration decides, with its name made neutral."""
    db = {"db": store.database}

    def rows(sql: str) -> list:
        return [tuple(str(v).replace(store.database, "DB") for v in row)
                for row in store.query(sql, parameters=db).result_rows]

    return {
        "tables": rows("SELECT name, engine, create_table_query, comment, sorting_key, partition_key "
                       "FROM system.tables WHERE database = {db:String} ORDER BY name"),
        "columns": rows("SELECT table, position, name, type, default_kind, default_expression, comment, "
                        "compression_codec, is_in_sorting_key FROM system.columns "
                        "WHERE database = {db:String} ORDER BY table, position"),
        "migrations": [tuple(r) for r in store.query(
            f"SELECT number, name, checksum FROM {store.database}.schema_migrations ORDER BY number").result_rows],
    }


@pytest.mark.parametrize("ttl_days", [0, 90])
def test_the_fixture_copy_equals_a_store_migrated_from_scratch(hub_settings, ttl_days):
    settings = hub_settings.with_overrides(ttl_days=ttl_days)
    migrated = store_for(settings.with_overrides(database=f"t_{uuid.uuid4().hex[:10]}"))
    copied = migrated_copy(settings)
    expected = _schema(migrated)
    assert expected["tables"] and expected["migrations"]
    assert _schema(copied) == expected
    assert migrate(copied, settings) == []  # nothing left to apply: the records say every file is applied
