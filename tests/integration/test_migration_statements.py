"""A migration whose statements hold ``;`` in strings, quoted names and comments is applied whole,
statement by statement, on the real engine."""

from __future__ import annotations

import pytest

from hub.storage import migrations
from hub.storage.client import Store

MIGRATION = """-- notes kept by the hub; a comment with a semicolon
CREATE TABLE IF NOT EXISTS {db}.notes_with_semicolons
(
    note String DEFAULT 'a; b',  -- this default holds a ';'
    `odd;name` UInt8 DEFAULT 7   /* so do this quoted name; and this comment */
)
ENGINE = MergeTree ORDER BY note
COMMENT 'notes; kept whole';

INSERT INTO {db}.notes_with_semicolons (note) VALUES ('it''s; one row');
"""


@pytest.mark.clickhouse
def test_a_migration_with_semicolons_in_strings_names_and_comments_is_applied_whole(
        hub_settings, chdb_dir, monkeypatch, tmp_path):
    from tests.fixtures_clickhouse import store_for

    store: Store = store_for(hub_settings)  # every migration of the repository applied
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in migrations.MIGRATIONS_DIR.glob("*.sql"):
        (folder / path.name).write_bytes(path.read_bytes())
    number = migrations.discover()[-1].number + 1
    (folder / f"{number:04d}_notes_with_semicolons.sql").write_text(MIGRATION)
    monkeypatch.setattr(migrations.discover, "__defaults__", (folder, migrations.RETIRED))

    applied = migrations.migrate(store, hub_settings)

    assert [m.number for m in applied] == [number]
    table = f"{store.database}.notes_with_semicolons"
    comment = store.scalar("SELECT comment FROM system.tables WHERE database = {db:String} "
                           "AND name = 'notes_with_semicolons'", parameters={"db": store.database})
    assert comment == "notes; kept whole"
    assert store.query(f"SELECT note, `odd;name` FROM {table}").result_rows == [("it's; one row", 7)]
    store.command(f"INSERT INTO {table} (`odd;name`) VALUES (1)")
    assert store.scalar(f"SELECT note FROM {table} WHERE `odd;name` = 1") == "a; b"
    assert migrations.plan(store).pending == []
