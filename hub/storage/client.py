"""The hub's one way into ClickHouse: the embedded engine (chDB) or a server, through clickhouse-connect."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Any, Sequence

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from hub.errors import HubError, StoreRejected, StoreUnavailable, UserError
from hub.settings import Settings

log = logging.getLogger(__name__)


class _NoEncodingTracebacks(logging.Filter):
    """clickhouse-connect logs a traceback for every row it cannot encode; such a row is a
    ``StoreRejected`` the sink isolates and dead-letters with the reason (and logs once), so the
    tracebacks of each halving step would only bury the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Error serializing column")


logging.getLogger("clickhouse_connect.driver.transform").addFilter(_NoEncodingTracebacks())

#: ClickHouse error codes that are about the data of an insert: the same rows fail again.
DATA_ERROR_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    25,   # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    43,   # ILLEGAL_TYPE_OF_ARGUMENT
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    128,  # TOO_LARGE_ARRAY_SIZE
    130,  # CANNOT_READ_ARRAY_FROM_TEXT
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    407,  # DECIMAL_OVERFLOW
    469,  # VIOLATED_CONSTRAINT
})
#: Code 252 is TOO_MANY_PARTS: a back-pressure signal ("Too many parts", retried), except for
#: "Too many partitions for single INSERT block", which the same rows always hit again.
TOO_MANY_PARTS = 252
#: Raised by the client while it encodes rows into ClickHouse's native format: a value of the
#: wrong type or out of the column's range ("'int' object has no attribute 'encode'").
ENCODING_ERRORS = (AttributeError, TypeError, ValueError, OverflowError, struct.error, UnicodeError,
                   KeyError, IndexError)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error, at most 500 characters."""
    text = str(exc).strip() or type(exc).__name__
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return text[:500]


def classify_insert_error(exc: BaseException, table: str = "") -> HubError:
    """The one place where a failed insert is classified: ``StoreRejected`` (permanent: the rows
    themselves are refused) or ``StoreUnavailable`` (the store is away or busy: retried)."""
    if isinstance(exc, HubError):
        return exc
    reason = first_line(exc)
    where = f"insert into {table} failed" if table else "insert failed"
    if isinstance(exc, OperationalError) or isinstance(exc, (socket.error, TimeoutError, ConnectionError)):
        return StoreUnavailable(f"{where}: {reason}")
    if isinstance(exc, DataError):
        return StoreRejected(reason, table)
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        if code == TOO_MANY_PARTS and "partitions for single insert block" in reason.lower():
            return StoreRejected(reason, table)
        if code in DATA_ERROR_CODES:
            return StoreRejected(reason, table)
        return StoreUnavailable(f"{where}: {reason}")
    if isinstance(exc, ENCODING_ERRORS) and "closed" not in reason.lower():
        return StoreRejected(f"{type(exc).__name__}: {reason}", table)
    # Anything else (a lock held by another process, a broken client, an engine error about
    # the table rather than the rows) is not the data's fault: retried, and visible as a stall.
    return StoreUnavailable(f"{where}: {reason}")


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
        """Insert rows; with a token, a repeat of the same insert is dropped by the store.

        Raises ``StoreRejected`` when the rows themselves are refused (wrong type, value out of
        range, too many partitions in one block) and ``StoreUnavailable`` for everything else
        (``classify_insert_error``)."""
        if not rows:
            return
        # A repeat the table drops is dropped by the tables its materialized views fill too.
        settings: dict[str, int | str] = {"insert_deduplicate": 1,
                                          "deduplicate_blocks_in_dependent_materialized_views": 1}
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
                error = classify_insert_error(exc, table)
                if not isinstance(error, StoreRejected):
                    self._column_types.pop(key, None)
                raise error from exc

    def partition_key(self, table: str) -> str:
        """The table's PARTITION BY expression as the store reports it ("" without one)."""
        database, _, name = table.rpartition(".")
        return str(self.scalar(
            "SELECT partition_key FROM system.tables WHERE database = {d:String} AND name = {t:String}",
            parameters={"d": database or self.database, "t": name}) or "")

    def close(self) -> None:
        with self._lock:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing a broken client
                log.debug("closing the store failed", exc_info=True)


def open_store(settings: Settings, create_database: bool = True) -> Store:
    """Open the configured store; in embedded mode the data directory is created if missing."""
    import clickhouse_connect

    from hub.storage.token import store_dsn

    dsn = store_dsn(settings)  # with the store server's token from <home>/store-token when it is one
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
