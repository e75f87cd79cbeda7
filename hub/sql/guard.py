"""Read-only ad-hoc SQL: a guard that refuses anything but one reading statement, and an executor
that runs it on a connection the engine itself holds read-only, with row, time and memory limits.

Two layers, each sufficient for writes on its own (see docs/sql.md):

1. ``check_query`` tokenizes the text the way ClickHouse does (``hub.sql.lexer``: strings with
   escapes, quoted names, ``--``/``#``/nested ``/* */`` comments; a comment separates tokens, so
   ``DR/**/OP`` is ``DR OP``) and refuses, with a one-line reason, everything that is not exactly one SELECT,
   WITH, SHOW, DESCRIBE or EXPLAIN statement: write and admin keywords anywhere, SETTINGS and
   FORMAT clauses, INTO OUTFILE, calls of functions and table functions that are not on the
   allow-list (hub/sql/functions.py), system tables other than a short list of harmless ones,
   characters outside ASCII where a look-alike could hide a keyword. It returns the statement
   rebuilt from its tokens: comments gone, one space between tokens, no trailing ``;``. That
   text, not the original, is what runs.
2. ``execute_readonly`` runs the statement on a connection of its own, never the hub's writing
   one. On the embedded engine (chDB) the connection is made read-only for its whole life with
   ``SET readonly = 1`` after its limits are set, so neither the statement nor a SETTINGS clause
   can change them; on a server the limits and ``readonly = 1`` go with the request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Mapping

from hub.errors import ConfigError, HubError, UserError
from hub.sql.functions import call_refusal
from hub.sql.lexer import QueryRefused, Token, tokenize

MAX_QUERY_CHARS = 100_000
DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_SECONDS = 30.0


class QueryFailed(UserError):
    """The engine could not answer the statement (syntax, unknown table, time limit...)."""


# ---- limits -------------------------------------------------------------------------------
DEFAULT_MAX_MEMORY = 1 << 30  # 1 GiB; see docs/sql.md for why
RESULT_SHARE = 32             # the answer itself may take a 32nd of the memory limit (32 MiB at 1 GiB)
MIN_RESULT_BYTES = 1 << 20
# Ad-hoc queries that may run at once in one process, each within its memory limit; another one
# waits for a turn (at most its time limit), so the process's memory stays bounded too.
MAX_CONCURRENT = 2
_TURNS = threading.BoundedSemaphore(MAX_CONCURRENT)


@dataclass(frozen=True)
class SqlLimits:
    max_rows: int = DEFAULT_MAX_ROWS
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_memory: int = DEFAULT_MAX_MEMORY

    @property
    def max_result_bytes(self) -> int:
        """Largest answer (in the engine's Native encoding) that is decoded into Python objects,
        which can take several times that many bytes (an array of numbers about nine times)."""
        return max(MIN_RESULT_BYTES, self.max_memory // RESULT_SHARE)


def sql_limits(settings: Any = None, environ: Mapping[str, str] | None = None) -> SqlLimits:
    """HUB_SQL_MAX_ROWS, HUB_SQL_MAX_SECONDS and HUB_SQL_MAX_MEMORY from the settings object (which
    has read ``<home>/hub.env`` and the environment); without one, from the hub's settings as
    ``load_settings`` reads them (``environ`` instead of the process environment when given)."""
    if settings is None:
        from hub.settings import load_settings

        settings = load_settings(environ)

    def pick(attr: str, name: str, default: float, kind):
        raw = getattr(settings, attr, None)
        if raw in ("", None):
            return default
        try:
            number = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
        if number <= 0:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return number

    return SqlLimits(max_rows=pick("sql_max_rows", "HUB_SQL_MAX_ROWS", DEFAULT_MAX_ROWS, int),
                     max_seconds=pick("sql_max_seconds", "HUB_SQL_MAX_SECONDS", DEFAULT_MAX_SECONDS, float),
                     max_memory=pick("sql_max_memory", "HUB_SQL_MAX_MEMORY", DEFAULT_MAX_MEMORY, int))


def _size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


# ---- rules --------------------------------------------------------------------------------
STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")

# Words that have no place in a reading statement; refused wherever they stand outside strings,
# comments and quoted names (a column called like one of them can be written "quoted").
FORBIDDEN_WORDS = {
    "INSERT": "writes", "UPDATE": "writes", "DELETE": "writes", "ALTER": "changes tables",
    "DROP": "drops objects", "CREATE": "creates objects", "TRUNCATE": "deletes data",
    "RENAME": "renames objects", "EXCHANGE": "swaps tables", "UNDROP": "restores tables",
    "ATTACH": "attaches objects", "DETACH": "detaches objects", "OPTIMIZE": "rewrites parts",
    "GRANT": "changes access", "REVOKE": "changes access", "SET": "changes settings",
    "SETTINGS": "changes settings (the hub sets the limits)", "KILL": "stops queries",
    "INTO": "writes results elsewhere (INTO OUTFILE)", "OUTFILE": "writes a file",
    "INFILE": "reads a file", "BACKUP": "writes a backup", "RESTORE": "restores a backup",
}
WRITE_KEYWORDS = frozenset(FORBIDDEN_WORDS)

# Which functions and table functions a query may call: an allow-list (hub/sql/functions.py); a
# name followed by "(" that is not on it is refused, so is one the engine adds in a later version.

# system tables that describe the schema, the data's parts and the engine's counters; every other
# one (users, grants, quotas, named collections, zookeeper, processes, query and session logs,
# disks, clusters, server settings...) is refused: secrets, access control or other people's queries.
ALLOWED_SYSTEM_TABLES = frozenset((
    "one", "numbers", "numbers_mt", "zeros", "zeros_mt", "databases", "tables", "columns", "parts",
    "parts_columns", "data_skipping_indices", "functions", "table_functions", "table_engines",
    "data_type_families", "formats", "time_zones", "merges", "mutations", "metrics", "events",
    "asynchronous_metrics", "settings", "merge_tree_settings", "build_options", "keywords",
))

SHOW_ALLOWED = frozenset(("TABLES", "DATABASES", "COLUMNS", "FIELDS", "INDEX", "INDEXES", "INDICES", "KEYS",
                          "DICTIONARIES", "ENGINES", "FUNCTIONS", "CREATE"))
ACCESS_WORDS = frozenset(("USER", "USERS", "ROLE", "ROLES", "ROW", "POLICY", "POLICIES", "QUOTA", "QUOTAS",
                          "PROFILE", "PROFILES", "NAMED", "COLLECTION", "COLLECTIONS", "GRANTS", "ACCESS",
                          "PRIVILEGES", "PROCESSLIST", "MASKING"))
EXPLAIN_KINDS = frozenset(("AST", "SYNTAX", "PLAN", "PIPELINE", "ESTIMATE", "QUERY"))


def _name_of(token: Token) -> str | None:
    if token.kind == "word":
        return token.text
    if token.kind == "name":
        return token.value
    return None


def _split_statement(tokens: list[Token]) -> list[Token]:
    semis = [k for k, t in enumerate(tokens) if t.kind == "punct" and t.text == ";"]
    if not semis:
        return tokens
    if len(semis) == 1 and semis[0] == len(tokens) - 1:
        return tokens[:-1]
    raise QueryRefused("multiple-statements", "exactly one statement is allowed (a ';' may only end it)")


def _check_start(tokens: list[Token]) -> None:
    k = 0
    while k < len(tokens) and tokens[k].kind == "punct" and tokens[k].text == "(":
        k += 1
    first = tokens[k] if k < len(tokens) else None
    word = first.value if first is not None and first.kind == "word" else None
    if word not in STATEMENTS or (k and word not in ("SELECT", "WITH")):
        shown = first.text if first is not None else tokens[0].text
        raise QueryRefused("statement", f"only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN statements are allowed, "
                                   f"not {shown.upper()[:40]}")
    if word == "SHOW":
        rest = [t.value for t in tokens[1:4] if t.kind == "word"]
        while rest and rest[0] in ("FULL", "EXTENDED", "TEMPORARY"):
            rest.pop(0)
        what = rest[0] if rest else (tokens[1].text if len(tokens) > 1 else "")
        if what not in SHOW_ALLOWED or (what == "CREATE" and len(rest) > 1 and rest[1] in ACCESS_WORDS):
            shown = " ".join(rest[:2]) or what
            raise QueryRefused("show", f"SHOW {shown} is not available: SHOW TABLES, DATABASES, COLUMNS, INDEX, "
                                  "DICTIONARIES, ENGINES, FUNCTIONS and CREATE TABLE|VIEW|DATABASE are")
    if word == "EXPLAIN":
        j = 1
        if j < len(tokens) and tokens[j].kind == "word" and tokens[j].value in EXPLAIN_KINDS:
            j += 2 if tokens[j].value == "QUERY" else 1
        elif j < len(tokens) and tokens[j].kind == "word" and tokens[j].value in ("TABLE", "CURRENT"):
            raise QueryRefused("explain", f"EXPLAIN {tokens[j].value} is not available; EXPLAIN a SELECT query")
        # EXPLAIN's own options: name = value [, ...]
        while (j + 2 < len(tokens) and tokens[j].kind == "word" and tokens[j + 1].text == "="
               and tokens[j + 2].kind in ("number", "string", "word")):
            j += 3
            if j < len(tokens) and tokens[j].text == ",":
                j += 1
        while j < len(tokens) and tokens[j].text == "(":
            j += 1
        inner = tokens[j] if j < len(tokens) else None
        if inner is None or inner.kind != "word" or inner.value not in ("SELECT", "WITH"):
            shown = inner.text.upper()[:40] if inner is not None else "nothing"
            raise QueryRefused("explain", f"EXPLAIN must be followed by a SELECT query, not {shown}")


def _check_tokens(tokens: list[Token]) -> None:
    show_create = len(tokens) > 1 and tokens[0].value == "SHOW" and tokens[1].value == "CREATE"
    for k, t in enumerate(tokens):
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        # a word after "name." is a qualified name's part (system.settings, t.set), not a keyword
        qualified = k >= 2 and tokens[k - 1].text == "." and _name_of(tokens[k - 2]) is not None
        if t.kind == "word" and t.value in FORBIDDEN_WORDS and not (show_create and k == 1) and not qualified:
            if t.value == "INTO" and nxt is not None and nxt.kind == "word" and nxt.value == "OUTFILE":
                raise QueryRefused("outfile", "INTO OUTFILE is not allowed: results come back to you, not to a file")
            if t.value == "SETTINGS":
                raise QueryRefused("settings", "a SETTINGS clause is not allowed: the hub sets the limits "
                                          "(HUB_SQL_MAX_ROWS, HUB_SQL_MAX_SECONDS)")
            quoted = '"' + t.text.lower() + '"'
            raise QueryRefused("keyword", f"{t.value} {FORBIDDEN_WORDS[t.value]}: only reading is allowed "
                                     f"(a column of that name can be written {quoted})")
        if t.kind == "word" and t.value == "FORMAT" and not (nxt is not None and nxt.text == "("):
            raise QueryRefused("format", "a FORMAT clause is not allowed: the hub chooses the output format "
                                    "(--format table|csv|json)")
        name = _name_of(t)
        if name is not None and nxt is not None and nxt.text == "(":
            why = call_refusal(name)
            if why is not None:
                raise QueryRefused("function", f"{name}() is not allowed: it {why}")
        if (name is not None and name.lower() == "system" and nxt is not None and nxt.text == "."
                and k + 2 < len(tokens)):
            table = _name_of(tokens[k + 2])
            if table is not None and table.lower() not in ALLOWED_SYSTEM_TABLES:
                raise QueryRefused("system-table", f"system.{table} is not readable through the SQL interface "
                                              "(access control, secrets, server internals or other queries); "
                                              "system tables that are: " + ", ".join(sorted(ALLOWED_SYSTEM_TABLES)))


def _rebuild(tokens: list[Token]) -> str:
    out: list[str] = []
    for t in tokens:
        if out and t.spaced:
            out.append(" ")
        out.append(t.text)
    return "".join(out)


def check_query(sql: str) -> str:
    """The statement rebuilt from its tokens (comments removed, trailing ';' dropped), or
    ``QueryRefused`` with a one-line reason."""
    if not isinstance(sql, str):
        raise QueryRefused("empty", "the query must be text")
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryRefused("too-long", f"the query is longer than {MAX_QUERY_CHARS:,} characters")
    tokens = tokenize(sql)
    if not tokens:
        raise QueryRefused("empty", "the query is empty")
    tokens = _split_statement(tokens)
    if not tokens:
        raise QueryRefused("empty", "the query is empty")
    _check_start(tokens)
    _check_tokens(tokens)
    return _rebuild(tokens)


# ---- execution ----------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return line[:500]


def _engine_limits(limits: SqlLimits) -> dict[str, Any]:
    """The limits as ClickHouse settings, enforced inside the engine for this statement."""
    return {
        "limit": limits.max_rows + 1,              # the answer stops there: one more than is kept, so that
        "max_result_rows": limits.max_rows + 1,    # truncation shows; a block of any size is cut exactly
        "max_result_bytes": limits.max_result_bytes,
        "result_overflow_mode": "throw",
        "max_execution_time": limits.max_seconds,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": limits.max_memory,
    }


def _open_reader(store, limits: SqlLimits):
    """A connection of its own for one statement; on chDB read-only for its whole life."""
    import clickhouse_connect

    settings = _engine_limits(limits)
    client = clickhouse_connect.get_client(dsn=store.dsn, database=store.database)
    if store.dsn.startswith("chdb"):
        for name, value in settings.items():
            literal = f"'{value}'" if isinstance(value, str) else repr(value)
            client.command(f"SET {name} = {literal}")
        client.command("SET readonly = 1")  # last: after it nothing can change a setting
        return client, None
    return client, {**settings, "readonly": 1}  # a server: per request, readonly last


class _Bytes:
    """The answer's bytes as the source clickhouse-connect's Native decoder reads."""

    def __init__(self, data: bytes):
        self.data = data
        self.last_message = None
        self.exception_tag = None

    @property
    def gen(self):
        yield self.data

    def close(self) -> None:
        return None


def _fetch(client, sql: str, per_query: dict | None, limits: SqlLimits):
    """The statement's answer, decoded only when its Native encoding is within
    ``limits.max_result_bytes``: decoding makes a Python object of every value, several times
    larger than the engine's bytes, and in the worker that memory is the worker's."""
    from clickhouse_connect.driver.ctypes import RespBuffCls
    from clickhouse_connect.driver.transform import NativeTransform

    data = client.raw_query(sql, settings=per_query, fmt="Native")
    if len(data) > limits.max_result_bytes:
        raise QueryFailed(f"the answer is larger than {_size(limits.max_result_bytes)} (HUB_SQL_MAX_MEMORY / "
                          f"{RESULT_SHARE}): select fewer or smaller columns, or aggregate")
    context = client.create_query_context(query=sql, settings=per_query)
    return NativeTransform.parse_response(RespBuffCls(_Bytes(data)), context)


def execute_readonly(store, sql: str, max_rows: int | None = None, max_seconds: float | None = None,
                     limits: SqlLimits | None = None) -> dict:
    """Run ``sql`` as it is (no guard: only for SQL already checked, or written by the hub) on a
    read-only connection with the limits; at most ``max_rows`` rows come back."""
    limits = limits or SqlLimits()
    if max_rows is not None or max_seconds is not None:
        limits = replace(limits, max_rows=max_rows or limits.max_rows, max_seconds=max_seconds or limits.max_seconds)
    max_rows, max_seconds = limits.max_rows, limits.max_seconds
    if not _TURNS.acquire(timeout=max_seconds):
        raise QueryFailed(f"{MAX_CONCURRENT} other queries kept running for {max_seconds:g} s "
                          "(HUB_SQL_MAX_SECONDS); try again")
    try:
        return _execute(store, sql, limits)
    finally:
        _TURNS.release()


def _execute(store, sql: str, limits: SqlLimits) -> dict:
    max_rows, max_seconds = limits.max_rows, limits.max_seconds
    try:
        client, per_query = _open_reader(store, limits)
    except Exception as exc:
        raise QueryFailed(f"cannot open a read-only connection: {_first_line(exc)}") from None
    try:
        result = _fetch(client, sql, per_query, limits)
        columns = list(result.column_names)
        raw = result.result_rows
    except HubError:
        raise
    except Exception as exc:
        message = _first_line(exc)
        if "TIMEOUT_EXCEEDED" in message or "Timeout exceeded" in message:
            raise QueryFailed(f"the query ran longer than {max_seconds:g} s (HUB_SQL_MAX_SECONDS)") from None
        if "MEMORY_LIMIT_EXCEEDED" in message or "memory limit exceeded" in message.lower():
            raise QueryFailed(f"the query needed more than {_size(limits.max_memory)} of memory "
                              f"(HUB_SQL_MAX_MEMORY): {message}") from None
        if "TOO_MANY_ROWS_OR_BYTES" in message or "Limit for result exceeded" in message:
            raise QueryFailed(f"the answer is larger than the limits allow (HUB_SQL_MAX_ROWS, "
                              f"HUB_SQL_MAX_MEMORY): {message}") from None
        if "READONLY" in message or "readonly mode" in message:
            raise QueryFailed(f"the store refused it, the SQL interface is read-only: {message}") from None
        raise QueryFailed(message) from None
    finally:
        try:
            client.close()
        except Exception:  # pragma: no cover - closing a broken connection
            pass
    truncated = len(raw) > max_rows
    rows = [list(r) for r in raw[:max_rows]]
    return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated,
            "max_rows": max_rows}


def run_readonly(store, sql: str, max_rows: int | None = None, max_seconds: float | None = None,
                 limits: SqlLimits | None = None) -> dict:
    """Check ``sql`` with ``check_query`` and run the normalised statement read-only.

    ``limits`` default to the hub's settings (``sql_limits()``: the environment and
    ``<home>/hub.env``); ``max_rows`` and ``max_seconds`` override theirs. Returns ``{"columns",
    "rows", "row_count", "truncated", "max_rows"}``; raises ``QueryRefused`` (the guard said no) or
    ``QueryFailed`` (the engine said no, or a limit was reached).
    """
    statement = check_query(sql)
    limits = limits or sql_limits()
    return execute_readonly(store, statement, max_rows, max_seconds, limits=limits)
