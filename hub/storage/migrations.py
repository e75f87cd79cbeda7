"""Numbered SQL migrations from ``schemas/clickhouse/NNNN_description.sql``, applied in order and recorded.

What the person running them can fix (a badly named or missing migration file, a file that cannot
be split into statements, an applied migration edited since, a store made by a newer hub) is a
``UserError``: ``hub migrate`` prints it in one line and exits 2. A statement the store fails to
run is a ``HubError`` (the store failed: exit 1). Running the migrations again changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubError, UserError
from hub.settings import REPO_ROOT, Settings
from hub.sql.lexer import QueryRefused, split_statements
from hub.storage.client import Store

MIGRATIONS_DIR = REPO_ROOT / "schemas" / "clickhouse"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Numbers that were never released, so no store has them: the only gaps allowed in the sequence.
RETIRED = frozenset({9})


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


def discover(directory: Path = MIGRATIONS_DIR, retired: frozenset[int] = RETIRED) -> list[Migration]:
    """Every migration file in order; refuses badly named files, duplicated numbers, and gaps in
    the numbering other than the ``retired`` numbers (a missing file is a lost migration)."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise UserError(f"migration file {path.name} does not match NNNN_description.sql")
        number = int(match.group(1))
        if number in found:
            raise UserError(f"two migrations share number {number:04d}: {found[number].path.name}, {path.name}")
        found[number] = Migration(number, match.group(2), path)
    missing = [n for n in range(1, max(found, default=0) + 1) if n not in found and n not in retired]
    if missing:
        raise UserError(f"migration number(s) {', '.join(f'{n:04d}' for n in missing)} missing from {directory}: "
                       "migrations are numbered without gaps; restore the file(s)")
    return [found[n] for n in sorted(found)]


@dataclass(frozen=True)
class Plan:
    """What ``migrate`` would do to a store: the migrations already applied and those pending."""
    applied: list[Migration]
    pending: list[Migration]


def plan(store: Store, done: dict[int, str] | None = None) -> Plan:
    """Compare the store's record (``done``: number -> checksum; read from the store when not
    given, changing nothing there) with the migration files; refuses a store whose applied
    migrations were edited since, or that has migrations this version does not know."""
    if done is None:
        done = recorded(store)
    known = discover()
    by_number = {m.number: m for m in known}
    unknown = sorted(set(done) - set(by_number))
    if unknown:
        raise UserError(f"the store {store.database} has migration(s) {', '.join(f'{n:04d}' for n in unknown)} "
                        "that this version of the hub does not have: run the hub version that made it")
    for number, checksum in sorted(done.items()):
        migration = by_number[number]
        if checksum and checksum != migration.checksum:
            raise UserError(f"migration {migration.path.name} was changed after it was applied to the store "
                            f"{store.database} (recorded checksum {checksum}, file {migration.checksum}): "
                            "an applied migration must not be edited; restore it and add a new migration instead")
    return Plan(applied=[m for m in known if m.number in done], pending=[m for m in known if m.number not in done])


def render(sql: str, settings: Settings) -> list[str]:
    """Substitute placeholders and split a file into statements at its ``;`` tokens (``hub.sql.lexer``:
    a ``;`` in a string, a quoted name or a comment is part of its statement)."""
    ttl = ""
    if settings.ttl_days > 0:
        ttl = f"TTL toDateTime(event_time) + INTERVAL {int(settings.ttl_days)} DAY"
    text = sql.replace("{db}", settings.database).replace("{ttl_clause}", ttl)
    return split_statements(text)


def recorded(store: Store) -> dict[int, str]:
    """The store's record of applied migrations, number -> checksum (empty when it has none); reads only."""
    exists = store.scalar("SELECT count() FROM system.tables WHERE database = {db:String} "
                          "AND name = 'schema_migrations'", parameters={"db": store.database})
    if not exists:
        return {}
    rows = store.query(f"SELECT number, checksum FROM {store.database}.schema_migrations").result_rows
    return {int(n): c for n, c in rows}


def applied(store: Store) -> dict[int, str]:
    """The store's record of applied migrations, its table made first when missing."""
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
    return recorded(store)


def migrate(store: Store, settings: Settings, progress=None) -> list[Migration]:
    """Apply every migration not yet recorded; returns those applied now.

    Several workers of a cluster may run this at the same time against one store, so every
    statement of a migration must be idempotent (``IF NOT EXISTS``, ``IF EXISTS``): a migration
    may be applied by two of them, and is then recorded once.
    """
    newly: list[Migration] = []
    for migration in plan(store, applied(store)).pending:
        try:
            statements = render(migration.sql, settings)
        except QueryRefused as exc:
            raise UserError(f"migration {migration.path.name} cannot be split into statements: {exc.reason}") from exc
        for statement in statements:
            try:
                store.command(statement)
            except Exception as exc:
                raise HubError(f"migration {migration.path.name} failed: "
                               f"{(str(exc).splitlines() or [type(exc).__name__])[0]}") from exc
        # Workers that start together may both apply a migration (its statements are idempotent,
        # IF NOT EXISTS); the token makes the store keep one record of it.
        store.insert(f"{store.database}.schema_migrations",
                     [[migration.number, migration.name, migration.checksum]],
                     ["number", "name", "checksum"], token=f"migration:{migration.number}:{migration.checksum}")
        newly.append(migration)
        if progress:
            progress(f"applied {migration.path.name}")
    return newly
