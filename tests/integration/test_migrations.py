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


def _copy_migrations(tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_a_gap_in_the_numbering_is_refused(tmp_path):
    from hub.errors import HubError

    folder = _copy_migrations(tmp_path)
    (folder / "0004_experiment_events.sql").unlink()
    with pytest.raises(HubError, match="0004 missing"):
        discover(folder)
    assert [m.number for m in discover(MIGRATIONS_DIR)][-1] == max(m.number for m in discover())


@pytest.mark.clickhouse
def test_an_applied_migration_that_was_edited_is_refused(hub_settings, chdb_dir, monkeypatch, tmp_path):
    from hub.errors import HubError
    from hub.storage import migrations
    from tests.fixtures_clickhouse import store_for

    store: Store = store_for(hub_settings)
    folder = _copy_migrations(tmp_path)
    edited = folder / "0006_alerts.sql"
    edited.write_text(edited.read_text() + "\n-- edited after it was applied\n")
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", folder)
    monkeypatch.setattr(migrations.discover, "__defaults__", (folder, migrations.RETIRED))
    with pytest.raises(HubError, match="0006_alerts.sql was changed after it was applied"):
        migrate(store, hub_settings)
    with pytest.raises(HubError, match="changed after it was applied"):
        migrations.plan(store)


@pytest.mark.clickhouse
def test_a_store_with_a_migration_this_version_lacks_is_refused(hub_settings, chdb_dir):
    from hub.errors import HubError
    from hub.storage import migrations
    from tests.fixtures_clickhouse import store_for

    store: Store = store_for(hub_settings)
    store.insert(f"{store.database}.schema_migrations", [[9999, "from_the_future", "0" * 16]],
                 ["number", "name", "checksum"])
    with pytest.raises(HubError, match="9999"):
        migrations.plan(store)


@pytest.mark.clickhouse
def test_the_plan_lists_applied_and_pending_migrations_and_changes_nothing(hub_settings, chdb_dir):
    from hub.storage import migrations
    from tests.fixtures_clickhouse import store_for

    store: Store = store_for(hub_settings)
    last = discover()[-1]
    store.command(f"ALTER TABLE {store.database}.schema_migrations DELETE WHERE number = {last.number} "
                  "SETTINGS mutations_sync = 1")
    state = migrations.plan(store)
    assert [m.number for m in state.pending] == [last.number]
    assert len(state.applied) == len(discover()) - 1
    assert [m.number for m in migrations.plan(store).pending] == [last.number]  # planning applied nothing
