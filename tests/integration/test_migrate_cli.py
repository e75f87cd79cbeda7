"""``hub migrate`` on a store of the real engine: running every migration again changes nothing
(tables, migration records, rows), ``--dry-run`` lists what is pending and changes nothing, and an
applied migration that was edited since is refused as a mistake: one line on stderr, exit code 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest

from hub.records.decode import DEAD_LETTER_COLUMNS
from hub.storage.client import Store
from hub.storage.migrations import discover, migrate, plan

pytestmark = pytest.mark.clickhouse


def snapshot(store: Store) -> dict:
    """Every table and view of the store's database with its definition and rows, and the migration records."""
    db = store.database
    tables = store.query("SELECT name, engine, create_table_query, total_rows FROM system.tables "
                         "WHERE database = {db:String} ORDER BY name", parameters={"db": db}).result_rows
    return {
        "tables": tables,
        "records": store.query(f"SELECT * FROM {db}.schema_migrations ORDER BY number").result_rows,
        "dead_letters": store.query(f"SELECT * FROM {db}.dead_letters ORDER BY source_offset").result_rows,
    }


def test_running_every_migration_again_changes_nothing(hub_settings, chdb_dir):
    from tests.fixtures_clickhouse import store_for

    store: Store = store_for(hub_settings)  # every migration applied, from an empty database
    row = dict.fromkeys(DEAD_LETTER_COLUMNS, "")
    row.update(dead_time=datetime(2026, 12, 7, 14, 3, 5), source_topic="legs",
               source_partition=2, source_offset=41, source_index=-1, reason="json: unexpected character")
    store.insert(f"{store.database}.dead_letters", [[row[c] for c in DEAD_LETTER_COLUMNS]], DEAD_LETTER_COLUMNS)
    before = snapshot(store)
    assert len(before["records"]) == len(discover()) and len(before["dead_letters"]) == 1
    assert plan(store).pending == []

    assert migrate(store, hub_settings) == []
    assert snapshot(store) == before
    assert plan(store).pending == []


TABLES = r'''
import json
from hub.settings import load_settings
from hub.storage.client import open_store
store = open_store(load_settings(), create_database=False)
print(json.dumps([r[0] for r in store.query("SELECT name FROM system.tables WHERE database = {db:String}",
                                             parameters={"db": store.database}).result_rows]))
'''

EDIT_RECORD = r'''
from hub.settings import load_settings
from hub.storage.client import open_store
store = open_store(load_settings())
store.command(f"ALTER TABLE {store.database}.schema_migrations UPDATE checksum = 'edited0000000000' "
              "WHERE number = 6 SETTINGS mutations_sync = 1")
'''


@pytest.mark.slow  # seven processes, each opening the embedded engine
def test_migrate_lists_applies_once_and_refuses_an_edited_migration_with_exit_code_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_HOME"] = str(tmp_path / "home")  # the embedded store, its own

    def hub(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)

    def python(script: str) -> str:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    files = [m.path.name for m in discover()]
    listed = hub("migrate", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:2] for line in listed.stdout.splitlines()[:-1]] == [["pending", f] for f in files]
    assert listed.stdout.splitlines()[-1] == f"{len(files)} migration(s) pending; nothing changed (--dry-run)"
    assert python(TABLES).strip() == "[]"  # the listing made nothing, not even the record's table

    first = hub("migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"applied {f}" for f in files] + [
        f"{len(files)} migration(s) applied; the store is up to date"]
    listed = hub("migrate", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:2] for line in listed.stdout.splitlines()[:-1]] == [["applied", f] for f in files]
    assert listed.stdout.splitlines()[-1] == "0 migration(s) pending; nothing changed (--dry-run)"

    python(EDIT_RECORD)  # the store's record of 0006 and the file now differ, as after an edit of the file
    for args in (("migrate",), ("migrate", "--dry-run")):
        refused = hub(*args)
        assert refused.returncode == 2, (args, refused.returncode, refused.stderr)
        assert refused.stdout == ""
        [line] = refused.stderr.splitlines()
        assert line.startswith("hub: error: migration 0006_alerts.sql was changed after it was applied"), line
        assert "recorded checksum edited0000000000" in line and "add a new migration instead" in line
