"""A Python column list against its table as all the migrations leave it (a store migrated from
scratch by the ``store`` fixture), never against the one migration file that created the table."""

from __future__ import annotations

from collections.abc import Iterable

from hub.storage.client import Store

HINT = ("add it in a new migration under schemas/clickhouse/, never by editing a released one "
        "(ALTER TABLE ... ADD COLUMN IF NOT EXISTS; see docs/testing.md, Adding a migration)")


def stored_columns(store: Store, table: str) -> list[str]:
    """The table's columns in the store, in their order (DESCRIBE TABLE)."""
    rows = store.query(f"DESCRIBE TABLE {store.database}.`{table}`").result_rows
    return [str(r[0]) for r in rows]


def written_tables(store: Store) -> set[str]:
    """The store's tables that take rows from a writer: neither views nor the tables a materialized
    view fills (``CREATE MATERIALIZED VIEW ... TO <table>``)."""
    listed = store.query("SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String}",
                         parameters={"db": store.database}).result_rows
    views = [ddl + " " for _, engine, ddl in listed if engine == "MaterializedView"]
    return {name for name, engine, _ in listed if engine not in ("View", "MaterializedView")
            and not any(f" TO {store.database}.{name} " in ddl for ddl in views)}


def assert_columns_stored(store: Store, table: str, columns: Iterable[str], defaulted: Iterable[str] = ()) -> None:
    """Every column of ``columns`` is in the migrated table, and the table has no other column than
    those and the ``defaulted`` ones the writer leaves to their default. Inserts name their columns,
    so the order is not compared."""
    expected = list(columns)
    stored = stored_columns(store, table)
    described = store.query(f"DESCRIBE TABLE {store.database}.`{table}`").result_rows
    undefaulted = [c for c in defaulted if c not in expected and not any(r[0] == c and r[2] for r in described)]
    assert not undefaulted, (f"{table}: column(s) {undefaulted} are listed as left to their default, but the store "
                             "gives them none: write them (add them to the code's column list)")
    missing = [c for c in expected if c not in stored]
    assert not missing, (f"{table}: column(s) {missing} written by the code are missing from the store "
                         f"migrated by every file under schemas/clickhouse/; a column missing from the store: {HINT}")
    extra = [c for c in stored if c not in expected and c not in set(defaulted)]
    assert not extra, (f"{table}: the migrations create column(s) {extra} that the code's column list does not "
                       "write: add them to that list (or give them a DEFAULT and list them as defaulted here)")
