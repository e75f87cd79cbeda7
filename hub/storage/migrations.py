"""Numbered SQL migrations from ``schemas/clickhouse/NNNN_description.sql``, applied in order and recorded."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubError
from hub.settings import REPO_ROOT, Settings
from hub.storage.client import Store

MIGRATIONS_DIR = REPO_ROOT / "schemas" / "clickhouse"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in order; refuses gaps in naming and duplicated numbers."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise HubError(f"migration file {path.name} does not match NNNN_description.sql")
        number = int(match.group(1))
        if number in found:
            raise HubError(f"two migrations share number {number:04d}: {found[number].path.name}, {path.name}")
        found[number] = Migration(number, match.group(2), path)
    return [found[n] for n in sorted(found)]


def render(sql: str, settings: Settings) -> list[str]:
    """Substitute placeholders and split a file into statements."""
    ttl = ""
    if settings.ttl_days > 0:
        ttl = f"TTL toDateTime(event_time) + INTERVAL {int(settings.ttl_days)} DAY"
    text = sql.replace("{db}", settings.database).replace("{ttl_clause}", ttl)
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";")]
    return [s for s in statements if s]


def applied(store: Store) -> dict[int, str]:
    store.command(
        f"CREATE TABLE IF NOT EXISTS {store.database}.schema_migrations "
        "(number UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY number SETTINGS non_replicated_deduplication_window = 1000"
    )
    ddl = store.scalar("SELECT create_table_query FROM system.tables WHERE database = {db:String} "
                       "AND name = 'schema_migrations'", parameters={"db": store.database}) or ""
    if "non_replicated_deduplication_window" not in ddl:  # made before records were deduplicated
        store.command(f"ALTER TABLE {store.database}.schema_migrations "
                      "MODIFY SETTING non_replicated_deduplication_window = 1000")
    rows = store.query(f"SELECT number, checksum FROM {store.database}.schema_migrations").result_rows
    return {int(n): c for n, c in rows}


def migrate(store: Store, settings: Settings, progress=None) -> list[Migration]:
    """Apply every migration not yet recorded; returns those applied now.

    Several workers of a cluster may run this at the same time against one store, so every
    statement of a migration must be idempotent (``IF NOT EXISTS``, ``IF EXISTS``): a migration
    may be applied by two of them, and is then recorded once.
    """
    done = applied(store)
    newly: list[Migration] = []
    for migration in discover():
        if migration.number in done:
            continue
        for statement in render(migration.sql, settings):
            try:
                store.command(statement)
            except Exception as exc:
                raise HubError(f"migration {migration.path.name} failed: {str(exc).splitlines()[0]}") from exc
        # Workers that start together may both apply a migration (its statements are idempotent,
        # IF NOT EXISTS); the token makes the store keep one record of it.
        store.insert(f"{store.database}.schema_migrations",
                     [[migration.number, migration.name, migration.checksum]],
                     ["number", "name", "checksum"], token=f"migration:{migration.number}:{migration.checksum}")
        newly.append(migration)
        if progress:
            progress(f"applied {migration.path.name}")
    return newly
