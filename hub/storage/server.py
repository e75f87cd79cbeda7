"""The store server: one process owns the embedded ClickHouse engine (chDB) and answers ClickHouse's
HTTP interface as clickhouse-connect, clickhouse-go v2 (Grafana's ClickHouse plugin) and the
JavaScript client use it. ``hub store serve`` runs it; in the embedded mode the worker serves it
too (``serve_endpoint``), for Grafana's read-only datasource user.

Only one process may open a chDB data directory, so hub processes in embedded mode cannot share a
store. ``hub store serve`` runs this module: the engine stays in one process, and every worker of
a cluster on the same host points ``HUB_CLICKHOUSE_URL`` at it, exactly as it would at a
ClickHouse server. What runs the statements is the real engine, so deduplication tokens,
``readonly``, limits, error codes and formats behave as ClickHouse's do.

What it is not (see docs/store-server.md): a ClickHouse server. One statement of the token's
holder runs at a time (the engine is used from one thread; read-only users' statements run beside
it on connections of their own, within the hub's SQL limits, cancelled when their client goes
away), results are built whole before they are sent, there is no
replication, no access control beyond one shared secret and read-only users, no native TCP
protocol, and no external data.

The HTTP interface it serves:

- ``GET /ping`` (and ``GET /`` without a query) answers ``Ok.``.
- ``GET|POST /``: the statement is the ``query`` URL parameter followed by the body (a newline
  between them), or the body alone, or the ``query`` field of a multipart form. An INSERT whose
  statement ends in ``FORMAT <name>`` takes the bytes after it as its data (any input format:
  Native, RowBinary, TabSeparated, JSONEachRow...). Request bodies may be compressed per
  ``Content-Encoding``: gzip, deflate, lz4 (frames), zstd, br (when brotli is installed), and in
  ClickHouse's compressed blocks with ``decompress=1``; ``compress=1`` answers in such blocks,
  ``enable_http_compression=1`` per ``Accept-Encoding``.
- ``client_protocol_version``: Native answers in that protocol's form (``hub.storage.native``).
- ``database``, ``default_format`` (and the ``X-ClickHouse-Database``/``X-ClickHouse-Format``
  request headers), ``session_id``, ``query_id``, ``param_<name>`` bind parameters; every other
  URL parameter is a ClickHouse setting for this statement only, except the transport ones that
  only mean something to a real server's HTTP layer (``wait_end_of_query``,
  ``send_progress_in_http_headers``, ``enable_http_compression``, ...), which are accepted and
  ignored. A GET request is read-only (``readonly=2``), as on a server.
- ``SET`` and ``USE`` statements last for their session (``session_id``) and do nothing without
  one; a request's own settings never outlive it.
- Answers carry ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Format`` (for statements with a
  result), ``X-ClickHouse-Timezone``, ``X-ClickHouse-Server-Display-Name`` and
  ``X-ClickHouse-Summary``; failures are HTTP 500 with ``X-ClickHouse-Exception-Code`` and the
  engine's ``Code: N. DB::Exception: ...`` text, so clients raise their usual errors.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import uuid
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from aiohttp import BodyPartReader, web

from hub.storage import compression, native

log = logging.getLogger(__name__)

# ---- ClickHouse error codes used by the server itself -------------------------------------------
UNSUPPORTED_METHOD = (1, "UNSUPPORTED_METHOD")
CANNOT_READ_ALL_DATA = (33, "CANNOT_READ_ALL_DATA")
CHECKSUM_DOESNT_MATCH = (40, "CHECKSUM_DOESNT_MATCH")
BAD_ARGUMENTS = (36, "BAD_ARGUMENTS")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
SYNTAX_ERROR = (62, "SYNTAX_ERROR")
UNKNOWN_SETTING = (115, "UNKNOWN_SETTING")
CANNOT_DECOMPRESS = (271, "CANNOT_DECOMPRESS")
AUTHENTICATION_FAILED = (516, "AUTHENTICATION_FAILED")
ACCESS_DENIED = (497, "ACCESS_DENIED")
UNKNOWN_EXCEPTION = (1002, "UNKNOWN_EXCEPTION")

# URL parameters that belong to the HTTP layer of a server, not to the statement: accepted and
# ignored (or read by the server itself), never applied as settings.
TRANSPORT_PARAMETERS = frozenset({
    "query", "database", "default_format", "session_id", "session_timeout", "session_check",
    "query_id", "quota_key", "user", "password", "role", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "compress", "decompress", "enable_http_compression",
    "http_zlib_compression_level", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
    "http_native_compression_disable_checksumming_on_decompress", "add_http_cors_header",
    "http_response_buffer_size", "http_wait_end_of_query", "http_write_exception_in_output_format",
})

# Statements whose answer is a result set (reported with X-ClickHouse-Format even when empty).
RESULT_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "EXISTS", "CHECK"})

READER_TAG = "hub-reader-"  # log_comment of a read-only user's statement: its tag for cancelling it
READER_THREADS = 4  # read-only users' statements running at once, next to the token holder's
DISCONNECT_POLL_SECONDS = 0.2  # how often a running read-only statement's client is checked for being gone
MAX_SESSIONS = 128  # sessions holding SET/USE state; the least recently used one is dropped beyond
HEAD_LIMIT = 1 << 20  # bytes of a body searched for the end of an INSERT statement
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code:\s*(\d+)")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*(?:\(version [^)]*\))?\s*$")
_TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+([A-Za-z_][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)


class StoreError(Exception):
    """A failure answered to the client as ClickHouse answers it: code, name, and the text
    ``Code: N. DB::Exception: message. (NAME)``."""

    def __init__(self, code_name: tuple[int, str], message: str, status: int = 500, text: str | None = None):
        self.code, self.name = code_name
        self.message = message
        self.status = status
        self.text = text or f"Code: {self.code}. DB::Exception: {message}. ({self.name})"
        super().__init__(self.text)


def _engine_error(exc: BaseException) -> StoreError:
    """An engine exception as it came: chDB's messages already read 'Code: N. DB::Exception: ... (NAME)'."""
    text = str(exc).strip() or type(exc).__name__
    start = text.find("Code: ")
    if start > 0:
        text = text[start:]
    code = _CODE.match(text)
    if not code:
        return StoreError(UNKNOWN_EXCEPTION, text)
    name = _NAME.search(text)
    return StoreError((int(code.group(1)), name.group(1) if name else ""), text, text=text)


# ---- reading statements -------------------------------------------------------------------------
def _skip_blank(s: str, i: int) -> int:
    """Skip whitespace and comments (``--``, ``#``, nested ``/* */``); returns the next position."""
    n = len(s)
    while i < n:
        ch = s[i]
        if ch in " \t\n\r\f\v":
            i += 1
        elif s.startswith("--", i) or ch == "#":
            end = s.find("\n", i)
            i = n if end < 0 else end + 1
        elif s.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if s.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif s.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    return i


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def leading_keyword(sql: bytes | str) -> str:
    """The statement's first word, upper-case ('' when there is none); opening parentheses are skipped."""
    s = sql[:4096].decode("latin-1") if isinstance(sql, (bytes, bytearray)) else sql[:4096]
    i = _skip_blank(s, 0)
    while i < len(s) and s[i] == "(":
        i = _skip_blank(s, i + 1)
    match = _WORD.match(s, i)
    return match.group(0).upper() if match else ""


@dataclass(frozen=True)
class InsertHead:
    """An ``INSERT ... FORMAT name`` statement at the start of a request, and where its data begins."""

    target: bytes        # "INSERT INTO t (a, b)" without SETTINGS and FORMAT
    settings: bytes      # "SETTINGS ..." clause of the statement, or b""
    fmt: str
    data_offset: int


NEED_MORE = object()


def parse_insert_head(buf: bytes, eof: bool):
    """Find an INSERT's data in the text of a request.

    Returns ``InsertHead`` when the text starts with ``INSERT ... FORMAT name`` (its data follows the
    name, after spaces and one line break, as ClickHouse reads it), ``None`` when it is any other
    statement (including ``INSERT ... VALUES``/``SELECT``, which the engine reads as text), or
    ``NEED_MORE`` when more bytes are needed to tell.
    """
    s = buf.decode("latin-1")  # one character per byte: positions are byte offsets
    n = len(s)
    i = _skip_blank(s, 0)
    if i >= n:
        return None if eof else NEED_MORE
    word = _WORD.match(s, i)
    if not word:
        return None
    if word.end() == n and not eof:
        return NEED_MORE
    if word.group(0).upper() != "INSERT":
        return None
    i = word.end()
    depth = 0
    settings_at = -1
    previous = "INSERT"  # the last word or punctuation read, upper-case
    while True:
        i = _skip_blank(s, i)
        if i >= n:
            return None if eof else NEED_MORE
        ch = s[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and s[j] != ch:
                j += 2 if s[j] == "\\" else 1
            if j >= n:
                return None if eof else NEED_MORE
            i, previous = j + 1, "NAME"
        elif ch in "([{":
            depth += 1
            i, previous = i + 1, ch
        elif ch in ")]}":
            depth -= 1
            i, previous = i + 1, ch
        elif ch == ";":
            return None
        else:
            match = _WORD.match(s, i)
            if not match:
                i, previous = i + 1, ch
                continue
            if match.end() == n and not eof:
                return NEED_MORE
            keyword = match.group(0).upper()
            if depth == 0 and keyword in ("VALUES", "SELECT", "WITH", "INFILE"):
                return None
            if depth == 0 and keyword == "SETTINGS":
                settings_at = i
            if depth == 0 and keyword == "FORMAT" and previous not in ("INTO", "TABLE", "FUNCTION", "."):
                j = _skip_blank(s, match.end())
                name = _WORD.match(s, j)
                if not name or (name.end() == n and not eof):
                    return None if eof else NEED_MORE
                k = name.end()
                while k < n and s[k] in " \t\f":
                    k += 1
                if k >= n and not eof:
                    return NEED_MORE
                if k < n and s[k] == "\r":
                    k += 1
                if k < n and s[k] == "\n":
                    k += 1
                elif k >= n and not eof and s[k - 1] == "\r":
                    return NEED_MORE
                if settings_at >= 0:
                    target, clause = buf[:settings_at], buf[settings_at:i]
                else:
                    target, clause = buf[:i], b""
                return InsertHead(target.strip(), clause.strip(), name.group(0), k)
            i, previous = match.end(), keyword


def trailing_format(sql: bytes) -> str | None:
    """The name in a statement's closing ``FORMAT name`` clause, if any."""
    match = _TRAILING_FORMAT.search(sql[-4096:])
    return match.group(1).decode() if match else None


def content_type(fmt: str) -> str:
    name = fmt.lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if name.startswith("json") or name in ("ndjson",):
        return "application/json; charset=UTF-8"
    if name in ("pretty", "prettycompact", "vertical", "markdown", "values", "xml", "raw") or name.startswith("pretty"):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def _quote_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


# ---- request bodies ------------------------------------------------------------------------------
class _Decoder:
    """Streaming decompression of a request body per Content-Encoding (concatenated frames too)."""

    def __init__(self, encoding: str):
        self.encoding = (encoding or "identity").strip().lower()
        self._factory: Callable[[], Any] | None
        if self.encoding in ("", "identity"):
            self._factory = None
        elif self.encoding in ("gzip", "x-gzip"):
            self._factory = lambda: zlib.decompressobj(wbits=31)
        elif self.encoding == "deflate":
            self._factory = lambda: zlib.decompressobj(wbits=15)
        elif self.encoding == "lz4":
            import lz4.frame

            self._factory = lz4.frame.LZ4FrameDecompressor
        elif self.encoding == "zstd":
            self._factory = compression._zstd().ZstdDecompressor
        elif self.encoding == "br":
            try:
                import brotli  # type: ignore[import-not-found]
            except ImportError:
                raise StoreError(UNSUPPORTED_METHOD, "Content-Encoding br needs the brotli package on the store server") from None
            self._factory = brotli.Decompressor
        else:
            raise StoreError(UNSUPPORTED_METHOD, f"Unknown HTTP Content-Encoding: {encoding}")
        # a decompressor object of zlib, lz4, zstd or brotli (their methods differ: see feed)
        self._current: Any = self._factory() if self._factory else None
        self._seen = False

    def feed(self, data: bytes) -> bytes:
        factory = self._factory
        if self._current is None or factory is None:
            return data
        out = []
        try:
            while data:
                self._seen = True
                if self.encoding == "br":
                    out.append(self._current.process(data))
                    break
                out.append(self._current.decompress(data))
                if not getattr(self._current, "eof", False):
                    break
                data = self._current.unused_data
                self._current = factory()
                self._seen = False
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(CANNOT_DECOMPRESS, f"cannot decompress the {self.encoding} request body: {exc}") from None
        return b"".join(out)

    def finish(self) -> None:
        if self._current is None or not self._seen:
            return
        if self.encoding == "br":
            if not self._current.is_finished():
                raise StoreError(CANNOT_DECOMPRESS, "the br request body ends in the middle of a stream")
            return
        if not getattr(self._current, "eof", True):
            raise StoreError(CANNOT_DECOMPRESS, f"the {self.encoding} request body ends in the middle of a frame")


class RequestText:
    """The text of a request (query parameter, then body), split into a statement and an INSERT's data.

    The data of ``INSERT ... FORMAT name`` goes to a file the engine reads with ``FROM INFILE``;
    any other statement is kept in memory as it is.
    """

    def __init__(self, tmp_dir: Path):
        self._tmp_dir = tmp_dir
        self._head = bytearray()
        self._state = "head"  # head -> text | data
        self._file: BinaryIO | None = None
        self.data_path: str | None = None
        self.insert: InsertHead | None = None
        self.data_bytes = 0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._state == "data":
            assert self._file is not None  # opened on entering the data state
            self._file.write(data)
            self.data_bytes += len(data)
            return
        self._head += data
        if self._state == "head":
            self._resolve(eof=False)

    def _resolve(self, eof: bool) -> None:
        found = parse_insert_head(bytes(self._head), eof)
        if found is NEED_MORE:
            if len(self._head) > HEAD_LIMIT:
                self._state = "text"
            return
        if found is None:
            self._state = "text"
            return
        self.insert = found
        fd, self.data_path = tempfile.mkstemp(prefix="insert-", suffix=".data", dir=self._tmp_dir)
        self._file = os.fdopen(fd, "wb")
        self._state = "data"
        rest = bytes(self._head[found.data_offset:])
        self._head = bytearray()
        self.feed(rest)

    def finish(self) -> bytes:
        """Returns the statement text (empty for an INSERT with data)."""
        if self._state == "head":
            self._resolve(eof=True)
            if self._state == "head":
                self._state = "text"
        if self._file is not None:
            self._file.close()
            self._file = None
        return bytes(self._head)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.data_path:
            try:
                os.unlink(self.data_path)
            except OSError:
                pass
            self.data_path = None


# ---- the engine ----------------------------------------------------------------------------------
@dataclass
class Statement:
    """One request, ready for the engine."""

    sql: bytes                       # the statement (empty when ``insert`` is set)
    insert: InsertHead | None = None
    data_path: str | None = None
    settings: dict[str, str] = field(default_factory=dict)   # in request order, without readonly
    readonly: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    session_id: str | None = None
    default_format: str = "TabSeparated"
    protocol: int = 0                # client_protocol_version: the Native format's version


@dataclass
class Outcome:
    body: bytes
    fmt: str | None
    summary: dict[str, str]
    timezone: str


class _Handle:
    """One chDB connection: its current database, the settings requests applied to it, the
    settings its session's SET statements left (``base``)."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.database: str | None = None
        self.session_db: str | None = None
        self.applied: dict[str, str] = {}
        self.base: dict[str, str] = {}

    def run(self, sql: str | bytes, fmt: str = "TabSeparated", params: dict | None = None):
        try:
            return self.conn.query(sql, fmt, params=params or {})
        except Exception as exc:
            raise _engine_error(exc) from None

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # pragma: no cover - closing a broken handle
            log.debug("closing a chDB handle failed", exc_info=True)


class Engine:
    """The embedded engine of one data directory, used by one thread at a time.

    A shared connection serves requests without session state; a session that ran SET or USE
    gets a connection of its own; a read-only request runs on a connection opened for it and
    closed after it (``readonly`` cannot be taken back on a connection).
    """

    def __init__(self, path: Path):
        import chdb

        self.path = Path(path).expanduser().resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        self._conn_string = str(self.path)
        self._chdb = chdb
        self._lock = threading.Lock()
        try:
            self._shared = _Handle(chdb.connect(self._conn_string))
        except Exception as exc:
            raise StoreError(BAD_ARGUMENTS, f"cannot open the store {self.path}: {str(exc).splitlines()[0]}") from None
        self._sessions: OrderedDict[str, _Handle] = OrderedDict()
        row = self._shared.run("SELECT version(), timezone()").bytes().decode().strip().split("\t")
        self.version, self.timezone = row[0], row[1]
        # What a new connection starts with (chDB changes a few defaults): restoring a setting a
        # request changed means going back to this value, not to the engine's default.
        self._initial = self._changed_settings(self._shared)
        self._shared.base = dict(self._initial)
        self.closed = False

    # ---- connections ---------------------------------------------------------------------
    def _open(self) -> _Handle:
        try:
            handle = _Handle(self._chdb.connect(self._conn_string))
        except Exception as exc:
            raise _engine_error(exc) from None
        handle.base = dict(self._initial)
        return handle

    def _session(self, session_id: str, create: bool) -> _Handle | None:
        handle = self._sessions.get(session_id)
        if handle is not None:
            self._sessions.move_to_end(session_id)
        elif create:
            handle = self._open()
            self._sessions[session_id] = handle
            while len(self._sessions) > MAX_SESSIONS:
                _, old = self._sessions.popitem(last=False)
                old.close()
        return handle

    @staticmethod
    def _use(handle: _Handle, database: str) -> None:
        if handle.database != database:
            handle.run(f"USE {_quote_identifier(database)}")
            handle.database = database

    @staticmethod
    def _set(handle: _Handle, name: str, value: str | None) -> None:
        if not _SETTING_NAME.match(name):
            raise StoreError(UNKNOWN_SETTING, f"Unknown setting '{name}'")
        literal = "DEFAULT" if value is None else _quote_string(value)
        handle.run(f"SET {name} = {literal}")

    def _apply_settings(self, handle: _Handle, wanted: dict[str, str]) -> None:
        """Make the connection's settings its session's plus exactly this request's."""
        for name in [n for n in handle.applied if n not in wanted]:
            self._set(handle, name, handle.base.get(name))
            del handle.applied[name]
        for name, value in wanted.items():
            if handle.applied.get(name) != value:
                handle.applied.pop(name, None)
                self._set(handle, name, value)
                handle.applied[name] = value

    def _restore(self, handle: _Handle) -> None:
        self._apply_settings(handle, {})

    def _changed_settings(self, handle: _Handle) -> dict[str, str]:
        out = handle.run("SELECT name, value FROM system.settings WHERE changed", "JSONEachRow").bytes()
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["name"]: r["value"] for r in rows if r["name"] != "database"}

    # ---- execution -----------------------------------------------------------------------
    def execute(self, statement: Statement) -> Outcome:
        with self._lock:
            if self.closed:
                raise StoreError(UNSUPPORTED_METHOD, "the store server is shutting down", status=503)
            keyword = "INSERT" if statement.insert else leading_keyword(statement.sql)
            if not keyword and not statement.sql.strip():
                raise StoreError(SYNTAX_ERROR, "Empty query", status=400)
            session = self._session(statement.session_id, create=False) if statement.session_id else None
            if keyword in ("SET", "USE") and statement.session_id and statement.readonly is None:
                session = self._session(statement.session_id, create=True)
                assert session is not None  # create=True opens one
                return self._run_session_statement(session, keyword, statement)
            if keyword in ("SET", "USE") or statement.readonly is not None:
                # No lasting effect: a SET or USE without a session, or a read-only request.
                handle = self._open()
                try:
                    if session is not None:
                        handle.session_db = session.session_db
                        for name, value in session.base.items():
                            if handle.base.get(name) != value:
                                self._set(handle, name, value)
                        handle.base = dict(session.base)
                    if keyword in ("SET", "USE"):
                        try:
                            return self._run(handle, statement)
                        finally:
                            handle.close()
                except BaseException:
                    handle.close()
                    raise
            else:
                handle = session or self._shared
                try:
                    return self._run(handle, statement)
                except StoreError:
                    raise
                except Exception as exc:  # the connection is in an unknown state: replace it
                    log.warning("store: replacing a connection after %r", exc)
                    self._replace(handle, statement.session_id)
                    raise StoreError(UNKNOWN_EXCEPTION, f"{type(exc).__name__}: {exc}") from None
        # A read-only request runs on its own connection outside the engine's lock: the engine runs
        # it next to other statements (chDB runs connections' queries concurrently).
        try:
            return self._run(handle, statement)
        finally:
            handle.close()

    def cancel(self, tag: str, prefix: bool = False) -> None:
        """Stop the running statement whose request carried ``tag`` (every one whose tag starts with
        it, with ``prefix``): KILL QUERY on another connection."""
        if self.closed:
            return
        handle = self._open()
        test = "startsWith(Settings['log_comment'], {})" if prefix else "Settings['log_comment'] = {}"
        try:
            handle.run(f"KILL QUERY WHERE {test.format(_quote_string(tag))} ASYNC")
        except StoreError as exc:
            log.warning("store: cannot cancel a statement: %s", exc.message)
        finally:
            handle.close()

    def _replace(self, handle: _Handle, session_id: str | None) -> None:
        fresh = self._open()
        if handle is self._shared:
            self._shared = fresh
        elif session_id:
            self._sessions[session_id] = fresh
        handle.close()

    def _run_session_statement(self, handle: _Handle, keyword: str, statement: Statement) -> Outcome:
        self._use(handle, statement.database or handle.session_db or "default")
        self._restore(handle)
        result = handle.run(statement.sql, statement.default_format, statement.params)
        if keyword == "USE":
            handle.database = handle.session_db = handle.run("SELECT currentDatabase()").bytes().decode().strip()
        else:
            handle.base = self._changed_settings(handle)
        return Outcome(result.bytes() or b"", None, self._summary(result, False), self.timezone)

    def _run(self, handle: _Handle, statement: Statement) -> Outcome:
        self._use(handle, statement.database or handle.session_db or "default")
        self._apply_settings(handle, statement.settings)
        if statement.readonly is not None:
            self._set(handle, "readonly", statement.readonly)  # last: nothing can change a setting after it
        tz = statement.settings.get("session_timezone") or handle.base.get("session_timezone") or self.timezone
        if statement.insert is not None:
            head = statement.insert
            assert statement.data_path is not None  # an INSERT's data is in a file (RequestText)
            # One clause a line: a comment at the end of the statement's text ends with its line.
            sql = (head.target + b"\nFROM INFILE " + _quote_string(statement.data_path).encode()
                   + b" COMPRESSION 'none'\n" + head.settings + b"\nFORMAT " + head.fmt.encode())
            result = handle.run(sql, "TabSeparated", statement.params)
            return Outcome(b"", None, self._summary(result, False), tz)
        result = handle.run(statement.sql, statement.default_format, statement.params)
        body = result.bytes() or b""
        keyword = leading_keyword(statement.sql)
        has_result = bool(body) or keyword in RESULT_KEYWORDS
        fmt = (trailing_format(statement.sql) or statement.default_format) if has_result else None
        summary = self._summary(result, has_result)
        if body and statement.protocol and fmt and fmt.lower() == "native":
            body = self._native_for_protocol(handle, statement, body)
        return Outcome(body, fmt, summary, tz)

    def _native_for_protocol(self, handle: _Handle, statement: Statement, body: bytes) -> bytes:
        """The engine's Native output in the client's protocol version, as a server writes it."""
        types = None
        try:
            if statement.protocol >= native.TIME_ZONE_IN_DATETIME and native.needs_types(body):
                # The engine drops DateTime's time zone for protocol 0: ask it for the result's types.
                sql = statement.sql.rstrip().rstrip(b";")
                described = handle.run(b"DESCRIBE (" + sql + b"\n)", "TabSeparated", statement.params)
                types = [line.split(b"\t")[1].decode().replace("\\'", "'")
                         for line in (described.bytes() or b"").splitlines() if line]
        except StoreError:
            types = None
        try:
            return native.for_protocol(body, statement.protocol, types)
        except native.UnsupportedType as exc:
            raise StoreError(NOT_IMPLEMENTED, f"{exc}; ask for another format (FORMAT RowBinary, JSON...)") from None
        except native.NativeError as exc:
            raise StoreError(UNKNOWN_EXCEPTION, f"cannot rewrite the engine's Native output: {exc}") from None

    @staticmethod
    def _summary(result: Any, has_result: bool) -> dict[str, str]:
        def stat(name: str) -> int:
            try:
                return int(getattr(result, name)())
            except Exception:
                return 0

        summary = {
            "read_rows": stat("storage_rows_read"), "read_bytes": stat("storage_bytes_read"),
            "written_rows": stat("rows_written"), "written_bytes": stat("bytes_written"),
            "total_rows_to_read": stat("storage_rows_read"),
            "result_rows": stat("rows_read") if has_result else 0,
            "result_bytes": stat("bytes_read") if has_result else 0,
        }
        try:
            summary["elapsed_ns"] = int(result.elapsed() * 1e9)
        except Exception:
            summary["elapsed_ns"] = 0
        return {k: str(v) for k, v in summary.items()}

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for handle in self._sessions.values():
                handle.close()
            self._sessions.clear()
            self._shared.close()


# ---- what no client may do -----------------------------------------------------------------------
# Calls (functions, table functions, table engines, dictionary sources) that make the engine read or
# write files, open connections or run programs: refused for every client, the token's holder too.
def _reaching_outside() -> dict[str, str]:
    from hub.sql.functions import REFUSED_TABLE_FUNCTIONS

    outside = ("files", "network", "program", "database file")
    names = {n.lower(): why for n, why in REFUSED_TABLE_FUNCTIONS.items() if any(w in why for w in outside)}
    for name in ("file", "filesystemAvailable", "filesystemCapacity", "filesystemUnreserved", "showCertificate"):
        names[name.lower()] = "reads the server's file system"
    names["disk"] = "defines a disk, local at any path or remote (SETTINGS disk = disk(...))"
    for name in ("aiClassify", "aiEmbed", "aiExtract", "aiFilter", "aiGenerate", "aiRedact", "aiSimilarity",
                 "aiTranslate", "hasColumnInTable"):
        names[name.lower()] = "reaches another server or service over the network"
    for name in ("URL", "File", "S3", "S3Queue", "AzureQueue", "HDFS", "MySQL", "PostgreSQL", "MaterializedPostgreSQL",
                 "MaterializedMySQL", "MongoDB", "Redis", "ODBC", "JDBC", "Executable", "ExecutablePool", "Kafka",
                 "RabbitMQ", "NATS", "FileLog", "Distributed", "SQLite", "AzureBlobStorage", "DeltaLake", "Iceberg",
                 "IcebergS3", "IcebergAzure", "IcebergHDFS", "IcebergLocal", "Hudi", "ArrowFlight", "YTsaurus",
                 "HTTP", "HTTPS", "ClickHouse", "Cassandra", "Executable_Pool", "YAMLRegExpTree"):
        names.setdefault(name.lower(), "is a table engine or dictionary source that reaches files, other servers or "
                                       "programs")
    return names


REACHES_OUTSIDE = _reaching_outside()
REFUSED_STATEMENTS = {"SYSTEM": "SYSTEM statements control the server", "BACKUP": "BACKUP writes files",
                      "RESTORE": "RESTORE reads files"}


def refusal(sql: str) -> str | None:
    """Why the store server refuses this statement (whoever sends it), or None.

    Refused: SYSTEM, BACKUP and RESTORE statements, INTO OUTFILE, FROM INFILE (the server stages an
    INSERT's data itself), ATTACH ... FROM a path, and every call in ``REACHES_OUTSIDE``; also a
    statement the tokenizer cannot read unambiguously (heredocs, a NUL, unterminated strings).
    """
    from hub.sql.guard import QueryRefused, tokenize

    try:
        tokens = tokenize(sql)
    except QueryRefused as refused:
        return f"the store server cannot read the statement unambiguously ({refused.reason})"
    start = True
    first = ""
    for k, t in enumerate(tokens):
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if t.kind == "punct" and t.text in ";(":
            start = start or t.text == ";"
            continue
        if start and t.kind == "word":
            first = t.value
            if first in REFUSED_STATEMENTS:
                return REFUSED_STATEMENTS[first]
        start = False
        if t.kind == "word" and t.value == "INTO" and nxt is not None and nxt.kind == "word" and nxt.value == "OUTFILE":
            return "INTO OUTFILE writes a file on the server"
        if t.kind == "word" and t.value == "INFILE":
            return "FROM INFILE reads a file on the server"
        if first == "ATTACH" and t.kind == "word" and t.value == "FROM":
            return "ATTACH ... FROM attaches files from a path on the server"
        name = t.text if t.kind == "word" else t.value if t.kind == "name" else None
        if name is not None and nxt is not None and nxt.text == "(" and name.lower() in REACHES_OUTSIDE:
            return f"{name}() {REACHES_OUTSIDE[name.lower()]}"
    return None


def statement_refusal(statement: "Statement") -> str | None:
    if statement.insert is not None:  # the data after FORMAT is data, not SQL
        text = statement.insert.target + b" " + statement.insert.settings
    else:
        text = statement.sql
    return refusal(text.decode("utf-8", "replace"))


# ---- HTTP ----------------------------------------------------------------------------------------
_RESPONSE_ENCODINGS = ("zstd", "gzip", "deflate", "lz4", "br")


def _response_encoding(request: web.Request) -> str | None:
    """The Content-Encoding of the answer: with enable_http_compression=1, the first encoding of
    Accept-Encoding the server can write (as a server does), else none."""
    if not _flag(request.query.get("enable_http_compression")):
        return None
    for item in request.headers.get("Accept-Encoding", "").split(","):
        name = item.split(";")[0].strip().lower()
        if name == "x-gzip":
            name = "gzip"
        if name in _RESPONSE_ENCODINGS:
            if name == "br":
                try:
                    import brotli  # noqa: F401
                except ImportError:
                    continue
            return name
    return None


def _encode(body: bytes, encoding: str, level: str | None) -> bytes:
    try:
        lvl = int(level) if level else 3
    except ValueError:
        lvl = 3
    if encoding == "gzip":
        return zlib.compress(body, max(0, min(lvl, 9)), wbits=31)
    if encoding == "deflate":
        return zlib.compress(body, max(0, min(lvl, 9)))
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.compress(body)
    if encoding == "zstd":
        return compression._zstd().compress(body, max(1, min(lvl, 19)))
    import brotli

    return brotli.compress(body)


def _flag(value: str | None) -> bool | None:
    """A boolean URL parameter as ClickHouse reads it (None when absent)."""
    if value is None:
        return None
    return value.strip().lower() not in ("", "0", "false")


def _protocol_version(value: str | None) -> int:
    if not value:
        return 0
    try:
        return max(0, int(value))
    except ValueError:
        raise StoreError(BAD_ARGUMENTS, f"client_protocol_version must be a number, not {value!r}", status=400) from None


def _credentials(request: web.Request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            return user, password
        except Exception:
            return "", ""
    if "X-ClickHouse-Key" in request.headers or "X-ClickHouse-User" in request.headers:
        return request.headers.get("X-ClickHouse-User", "default"), request.headers.get("X-ClickHouse-Key", "")
    return request.query.get("user", "default"), request.query.get("password", "")


@dataclass(frozen=True)
class Reader:
    """A read-only user of the store server (Grafana's datasource): every statement it sends runs
    with ``readonly = 1`` after the settings of its URL (which it may set, as a server's read-only
    profile lets ``max_execution_time`` and the like change), so INSERT, DDL and SET are refused
    by the engine with ClickHouse's READONLY (164)."""

    user: str
    password: str = ""


# Settings a read-only user's statement gets as ceilings: a value the client sends may only lower them.
def reader_settings(requested: dict[str, str], limits: Any) -> dict[str, str]:
    """The request's settings with the hub's SQL limits (``hub.sql.guard.SqlLimits``) as ceilings:
    time, memory and answer size, failing with the engine's own error codes when exceeded."""
    ceilings = {"max_execution_time": limits.max_seconds, "max_memory_usage": limits.max_memory,
                "max_result_bytes": limits.max_result_bytes}
    out = {k: v for k, v in requested.items()
           if k not in ("result_overflow_mode", "timeout_overflow_mode", "log_comment")}
    for name, ceiling in ceilings.items():
        try:
            wanted = float(out.get(name, "0"))
        except ValueError:
            wanted = 0.0
        value = ceiling if wanted <= 0 or wanted > ceiling else wanted
        out[name] = str(int(value)) if float(value).is_integer() else str(value)
    out["result_overflow_mode"] = out["timeout_overflow_mode"] = "throw"
    return out


# HTTP status of an engine error code, as a ClickHouse server answers (exceptionCodeToHTTPStatus).
_HTTP_STATUS = {
    194: 401,                                                   # REQUIRED_PASSWORD
    192: 403, 193: 403, 516: 403, 497: 403,                     # UNKNOWN_USER, WRONG_PASSWORD, ..., ACCESS_DENIED
    6: 400, 15: 400, 36: 400, 44: 400, 53: 400, 62: 400, 117: 400, 427: 400,  # parse errors, BAD_ARGUMENTS...
    46: 404, 47: 404, 50: 404, 56: 404, 60: 404, 63: 404, 73: 404, 81: 404, 115: 404,  # UNKNOWN_TABLE and the like
    48: 501,                                                    # NOT_IMPLEMENTED
    159: 408,                                                   # TIMEOUT_EXCEEDED
    209: 503,                                                   # SOCKET_TIMEOUT
}


class StoreServer:
    """The aiohttp application around an ``Engine``; statements run on one engine thread.

    Clients: whoever gives the token as the password (any user name) has full access; each
    ``Reader`` (user name and password) may only read.
    """

    def __init__(self, engine: Engine, token: str, display_name: str | None = None,
                 readers: tuple[Reader, ...] = (), limits: Any = None):
        if not token:
            raise ValueError("the store server needs a token (hub.storage.token.ensure_token)")
        self.engine = engine
        self.token = token
        self.readers = tuple(readers)
        self.display_name = display_name or socket.gethostname()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-engine")
        # Read-only users' statements run on threads (and connections) of their own, next to the
        # token holder's, within the hub's SQL limits (HUB_SQL_MAX_SECONDS, HUB_SQL_MAX_MEMORY).
        self._reader_executor = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="store-reader")
        if limits is None:
            from hub.sql.guard import SqlLimits

            limits = SqlLimits()
        self.limits = limits
        # INSERT data waits here for the engine: next to the store (same disk, not a RAM-backed
        # /tmp), emptied at start in case a killed server left files behind.
        self._tmp_dir = engine.path.parent / f"{engine.path.name}.incoming"
        shutil.rmtree(self._tmp_dir, ignore_errors=True)
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self.requests = 0
        self.errors = 0
        self.runner: web.AppRunner | None = None

    # ---- application ---------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/ping", self._ping)
        app.router.add_route("*", "/", self._query)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="Ok.\n")

    async def _not_found(self, request: web.Request) -> web.Response:
        return self._error_response(StoreError(NOT_IMPLEMENTED, f"There is no handle {request.path}", status=404),
                                    str(uuid.uuid4()), request)

    def _headers(self, query_id: str, timezone: str) -> dict[str, str]:
        return {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": timezone,
                "X-ClickHouse-Server-Display-Name": self.display_name}

    def _error_response(self, error: StoreError, query_id: str, request: web.Request | None = None) -> web.Response:
        """The exception as a server sends it: the text in the body (in compressed blocks when the
        request asked for compress=1), its code in X-ClickHouse-Exception-Code, and the HTTP status
        a server gives that code."""
        self.errors += 1
        headers = self._headers(query_id, self.engine.timezone)
        headers["X-ClickHouse-Exception-Code"] = str(error.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        status = error.status if error.status != 500 else _HTTP_STATUS.get(error.code, 500)
        body = (error.text + "\n").encode("utf-8")
        if request is not None and _flag(request.query.get("compress")):
            body = compression.compress(body)
        return web.Response(status=status, body=body, headers=headers)

    def _client(self, request: web.Request) -> Reader | None | bool:
        """True for the token's holder, the Reader for a read-only user, None when neither."""
        user, password = _credentials(request)
        if hmac.compare_digest(password.encode(), self.token.encode()):
            return True
        for reader in self.readers:
            if user == reader.user and hmac.compare_digest(password.encode(), reader.password.encode()):
                return reader
        return None

    async def _query(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        query_id = request.query.get("query_id") or str(uuid.uuid4())
        if request.method in ("GET", "HEAD") and "query" not in request.query:
            return web.Response(text="Ok.\n")
        text = RequestText(self._tmp_dir)
        client: Reader | None | bool = None
        try:
            client = self._client(request)
            if client is None:
                user = _credentials(request)[0] or "default"
                raise StoreError(AUTHENTICATION_FAILED, f"{user}: Authentication failed: password is incorrect, "
                                 "or there is no user with such name", status=401)
            if request.method not in ("GET", "POST"):
                raise StoreError(UNSUPPORTED_METHOD, f"HTTP method {request.method} is not supported", status=405)
            statement = await self._read(request, text)
            if isinstance(client, Reader):
                statement.readonly = "1"
                statement.settings = reader_settings(statement.settings, self.limits)
                statement.settings["log_comment"] = tag = f"{READER_TAG}{uuid.uuid4()}"
            why = statement_refusal(statement)
            if why is not None:
                raise StoreError(ACCESS_DENIED, f"refused by the store server: {why}", status=403)
            if isinstance(client, Reader):
                outcome = await self._run_cancellable(request, statement, tag)
            else:
                outcome = await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.execute,
                                                                           statement)
        except StoreError as error:
            log.debug("store: query %s failed: %s", query_id, error.message)
            if isinstance(client, Reader):  # the engine runs as its default user: name the client's
                error.text = error.text.replace("DB::Exception: default: ", f"DB::Exception: {client.user}: ", 1)
            return self._error_response(error, query_id, request)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            # The client went away before its request was whole: nothing of it runs.
            log.info("store: request %s cut off before its end (%s); not run", query_id, type(exc).__name__)
            return self._error_response(StoreError(CANNOT_READ_ALL_DATA, "the request body ended early"), query_id,
                                        request)
        except Exception as exc:
            log.exception("store: query %s failed", query_id)
            return self._error_response(StoreError(UNKNOWN_EXCEPTION, f"{type(exc).__name__}: {exc}"), query_id,
                                        request)
        finally:
            text.discard()
        headers = self._headers(query_id, outcome.timezone)
        summary = json.dumps(outcome.summary, separators=(",", ":"))
        headers["X-ClickHouse-Summary"] = summary
        if _flag(request.query.get("send_progress_in_http_headers")):
            # Results are built whole before they are sent: one progress header, the final one.
            progress = {k: outcome.summary.get(k, "0") for k in ("read_rows", "read_bytes", "written_rows",
                                                                  "written_bytes", "total_rows_to_read",
                                                                  "result_rows", "result_bytes", "elapsed_ns")}
            headers["X-ClickHouse-Progress"] = json.dumps(progress, separators=(",", ":"))
        if outcome.fmt:
            headers["X-ClickHouse-Format"] = outcome.fmt
            headers["Content-Type"] = content_type(outcome.fmt)
        else:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        body = outcome.body
        if body and _flag(request.query.get("compress")):
            body = compression.compress(body)
        encoding = _response_encoding(request)
        if body and encoding:
            body = _encode(body, encoding, request.query.get("http_zlib_compression_level"))
            headers["Content-Encoding"] = encoding
        return web.Response(body=body, headers=headers)

    async def _run_cancellable(self, request: web.Request, statement: Statement, tag: str) -> Outcome:
        """Run a read-only statement on a reader thread; when its client goes away first, the
        statement is cancelled in the engine (KILL QUERY) instead of running on for nobody."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._reader_executor, self.engine.execute, statement)
        while True:
            done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return future.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                log.info("store: client of query %s went away; cancelling it", tag)
                await loop.run_in_executor(None, self.engine.cancel, tag)
                return await future

    async def _read(self, request: web.Request, text: RequestText) -> Statement:
        """Parse parameters and stream the body; only a request read to its end becomes a statement."""
        query = request.query
        values: dict[str, str] = {k: query.getone(k) for k in query.keys()}
        body_reader = None
        if request.content_type == "multipart/form-data" and request.method == "POST":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    raise StoreError(NOT_IMPLEMENTED, "a form nested in a form is not supported by the store server")
                if part.filename:
                    raise StoreError(NOT_IMPLEMENTED, "external data (files in a form) is not supported by the store server")
                if part.name is None:
                    raise StoreError(BAD_ARGUMENTS, "a form field without a name", status=400)
                values[part.name] = await part.text()
        else:
            body_reader = request.content
        decoder = _Decoder(request.headers.get("Content-Encoding", ""))
        # decompress=1: the body is in ClickHouse's compressed blocks (inside any Content-Encoding).
        blocks = compression.Decompressor(verify=_flag(values.get(
            "http_native_compression_disable_checksumming_on_decompress")) is not True) \
            if _flag(values.get("decompress")) else None
        if values.get("query"):
            text.feed(values["query"].encode("utf-8") + b"\n")
        if body_reader is not None:
            try:
                async for chunk in body_reader.iter_chunked(1 << 20):
                    data = decoder.feed(chunk)
                    text.feed(blocks.feed(data) if blocks is not None else data)
                decoder.finish()
                if blocks is not None:
                    blocks.finish()
            except compression.CompressionError as exc:
                if exc.checksum:
                    raise StoreError(CHECKSUM_DOESNT_MATCH, f"Checksum doesn't match: corrupted data ({exc})") from None
                raise StoreError(CANNOT_DECOMPRESS, f"cannot decompress the request body: {exc}") from None
        sql = text.finish()
        settings: dict[str, str] = {}
        params: dict[str, str] = {}
        readonly = None
        for name, value in values.items():
            if name.startswith("param_"):
                params[name[6:]] = value
            elif name == "readonly":
                readonly = None if value.strip() in ("", "0") else value
            elif name not in TRANSPORT_PARAMETERS:
                settings[name] = value
        if request.method == "GET" and readonly is None:
            readonly = "2"  # as on a server: a GET request cannot write
        return Statement(
            sql=sql, insert=text.insert, data_path=text.data_path, settings=settings, readonly=readonly,
            params=params,
            database=values.get("database") or request.headers.get("X-ClickHouse-Database") or None,
            session_id=values.get("session_id") or None,
            default_format=values.get("default_format") or request.headers.get("X-ClickHouse-Format") or "TabSeparated",
            protocol=_protocol_version(values.get("client_protocol_version")),
        )

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self, host: str, port: int) -> web.AppRunner:
        runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=False, auto_decompress=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        return runner

    def cancel_readers(self) -> None:
        """Cancel every read-only user's statement still running (the server stops)."""
        self.engine.cancel(READER_TAG, prefix=True)

    def close(self) -> None:
        self.cancel_readers()
        self._executor.shutdown(wait=True)
        self._reader_executor.shutdown(wait=True)
        self.engine.close()
        shutil.rmtree(self._tmp_dir, ignore_errors=True)


def serve(path: Path, host: str, port: int, token: str,
          on_ready: Callable[[str], None] | None = None, readers: tuple[Reader, ...] = (), limits: Any = None) -> None:
    """Run the store server in this process until SIGINT or SIGTERM; the engine closes cleanly."""
    engine = Engine(path)
    server = StoreServer(engine, token=token, readers=readers, limits=limits)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            runner = await server.start(host, port)
        except OSError as exc:
            raise StoreError(BAD_ARGUMENTS, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        log.info("store server: %s (ClickHouse engine %s) on %s", engine.path, engine.version, url)
        if on_ready:
            on_ready(url)
        try:
            await stop.wait()
        finally:
            log.info("store server: stopping after %d requests", server.requests)
            # Read-only statements still running are cancelled: their requests end, the server stops.
            await loop.run_in_executor(None, server.cancel_readers)
            await runner.cleanup()

    try:
        asyncio.run(main())
    finally:
        server.close()


# ---- the endpoint for Grafana ----------------------------------------------------------------------
def endpoint_readers(settings) -> tuple[Reader, ...]:
    """The read-only user of the endpoint: the Grafana datasource's user and password
    (HUB_GRAFANA_CLICKHOUSE_USER, HUB_GRAFANA_CLICKHOUSE_PASSWORD)."""
    return (Reader(settings.grafana_clickhouse_user or "hub_grafana", settings.grafana_clickhouse_password or ""),)


def endpoint_problem(settings, host: str | None = None) -> str | None:
    """Why the store may not be served on ``host`` (default HUB_STORE_HOST), or None: off loopback
    the token must be set explicitly and the read-only user needs a password."""
    from hub.storage.token import is_loopback, token_path

    host = host or settings.store_host
    if is_loopback(host):
        return None
    if not settings.store_token:
        return (f"refusing to serve the store on {host} without HUB_STORE_TOKEN: off this host, set the secret "
                "explicitly and give it to every client (or listen on 127.0.0.1, where a token is generated into "
                f"{token_path(settings)})")
    if any(not reader.password for reader in endpoint_readers(settings)):
        return (f"refusing to serve the store on {host} with a read-only user without a password: set "
                "HUB_GRAFANA_CLICKHOUSE_PASSWORD (or listen on 127.0.0.1)")
    return None


async def serve_endpoint(settings) -> StoreServer | None:
    """In embedded mode, the worker (the process that owns the store) serves it over ClickHouse's
    HTTP interface on HUB_STORE_HOST:HUB_STORE_PORT, for Grafana's datasource (read-only user) and
    the token's holder. Returns None, with an error logged, when it cannot: the worker runs on."""
    from hub.storage.token import ensure_token

    problem = endpoint_problem(settings)
    if problem:
        log.error("store endpoint not served: %s", problem)
        return None
    from hub.sql.guard import sql_limits

    server = StoreServer(Engine(settings.clickhouse_path), token=ensure_token(settings),
                         readers=endpoint_readers(settings), limits=sql_limits(settings))
    try:
        server.runner = await server.start(settings.store_host, settings.store_port)
    except OSError as exc:
        log.error("store endpoint not served: cannot listen on %s:%s (%s); Grafana cannot read the store",
                  settings.store_host, settings.store_port, exc.strerror or exc)
        server.close()
        return None
    users = ", ".join(r.user for r in server.readers) or "none"
    log.info("store endpoint (ClickHouse HTTP interface) on http://%s:%s, read-only user: %s",
             settings.store_host, settings.store_port, users)
    return server
