"""The hub's one way into ClickHouse: the embedded engine (chDB) or a server, through clickhouse-connect."""

from __future__ import annotations

import logging
import threading
from typing import Any, Sequence

from clickhouse_connect.driver.exceptions import OperationalError

from hub.errors import StoreUnavailable, UserError
from hub.settings import Settings

log = logging.getLogger(__name__)


class Store:
    """A thread-safe wrapper of a clickhouse-connect client.

    chDB runs in-process and only one process may open a data directory; every call is
    serialised through one lock so that the worker's sink, its HTTP queries and its
    migrations can share the client from several threads.
    """

    def __init__(self, client: Any, database: str, dsn: str):
        self._client = client
        self._lock = threading.RLock()
        self.database = database
        self.dsn = dsn
        # (table, columns) -> the columns' ClickHouse types: without them, every insert first asks
        # the store to describe the table (a second statement per insert). Cleared by any command
        # (migrations alter tables through ``command``) and after a failed insert.
        self._column_types: dict[tuple, list] = {}

    def command(self, sql: str, settings: dict | None = None) -> Any:
        with self._lock:
            self._column_types.clear()
            try:
                return self._client.command(sql, settings=settings)
            except OperationalError as exc:
                raise StoreUnavailable(f"the store did not answer: {exc}") from exc

    def query(self, sql: str, parameters: dict | None = None, settings: dict | None = None):
        """Run a query; returns clickhouse-connect's QueryResult (column_names, result_rows).

        A store that cannot be reached (a server restarting, a network cut) raises
        ``StoreUnavailable``, which the sink retries; an error in the query itself is raised as is.
        """
        with self._lock:
            try:
                return self._client.query(sql, parameters=parameters, settings=settings)
            except OperationalError as exc:
                raise StoreUnavailable(f"the store did not answer: {exc}") from exc

    def scalar(self, sql: str, parameters: dict | None = None) -> Any:
        rows = self.query(sql, parameters=parameters).result_rows
        return rows[0][0] if rows else None

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str],
               token: str | None = None) -> None:
        """Insert rows; with a token, a repeat of the same insert is dropped by the store."""
        if not rows:
            return
        settings = {"insert_deduplicate": 1}
        if token:
            settings["insert_deduplication_token"] = token
        key = (table, tuple(columns))
        with self._lock:
            try:
                types = self._column_types.get(key)
                if types is None:
                    context = self._client.create_insert_context(table, column_names=list(columns))
                    types = self._column_types[key] = list(context.column_types)
                context = self._client.create_insert_context(table, column_names=list(columns),
                                                             column_types=types, settings=settings, data=rows)
                try:
                    self._client.insert(context=context)
                finally:
                    # clickhouse-connect's insert context sits in a reference cycle; without this the
                    # rows would stay alive until the cyclic garbage collector finds it (tens of
                    # thousands of rows a second for the worker's sink, collected in long pauses).
                    vars(context).clear()
            except Exception as exc:  # clickhouse-connect raises many kinds; all mean "not stored"
                self._column_types.pop(key, None)
                raise StoreUnavailable(f"insert into {table} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing a broken client
                log.debug("closing the store failed", exc_info=True)


def open_store(settings: Settings, create_database: bool = True) -> Store:
    """Open the configured store; in embedded mode the data directory is created if missing."""
    import clickhouse_connect

    dsn = settings.clickhouse_dsn
    if settings.embedded_clickhouse:
        settings.clickhouse_path.mkdir(parents=True, exist_ok=True)
    try:
        client = clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if settings.embedded_clickhouse and ("lock" in message.lower() or "already" in message.lower()):
            raise UserError(
                f"the embedded store {settings.clickhouse_path} is open in another process "
                "(is the hub running? use `hub sql` through it, or `hub down` first)") from exc
        raise StoreUnavailable(f"cannot open ClickHouse at {redact_dsn(dsn)}: {message}") from exc
    store = Store(client, settings.database, dsn)
    if create_database:
        store.command(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    return store


def redact_dsn(dsn: str) -> str:
    """A DSN without its password, for messages."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return dsn
