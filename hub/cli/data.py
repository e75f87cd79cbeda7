"""``hub emit``, ``hub sql`` and ``hub migrate``: putting records in and getting answers out."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
import uuid
from typing import Iterable, Iterator

from hub.errors import HubError, UserError
from hub.runtime.stack import Stack
from hub.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emit", help="send request-leg records to hub.requests",
                       description="Send records from a file of JSON lines (CloudEvents envelopes), "
                                   "from standard input, or generated synthetic gateway traffic.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--count", type=int, metavar="N", help="generate N synthetic request-leg records")
    source.add_argument("--file", metavar="PATH", help="read JSON lines from PATH ('-' for standard input)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    p.add_argument("--experiment", default="", metavar="ID", help="tag generated records with this experiment id")
    p.add_argument("--topic", default=None, help="topic to send to (default HUB_TOPIC_REQUESTS)")
    p.add_argument("--batch", type=int, default=100, metavar="N",
                   help="pack up to N events of one partition into one Kafka record as a CloudEvents "
                        "batch (default 100; 1 sends one event per record)")
    p.add_argument("--raw", action="store_true",
                   help="send file lines as they are, without checking them (the hub dead-letters bad ones)")
    p.set_defaults(func=cmd_emit)

    p = sub.add_parser("sql", help="run a SQL query through the running hub, or on the store when none runs")
    p.add_argument("query", help="the SQL text, e.g. \"SELECT count() FROM hub.requests\"")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default table)")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("migrate", help="apply the ClickHouse migrations not yet applied",
                       description="Apply the ClickHouse migrations (schemas/clickhouse/NNNN_*.sql) not yet applied to "
                                   "the store, in order; run again, it changes nothing. Refuses (one line on stderr, "
                                   "exit code 2) a store whose applied migrations were edited since (their recorded "
                                   "checksum differs) or that has migrations this version lacks.")
    p.add_argument("--dry-run", action="store_true",
                   help="list each migration as applied or pending (with its checksum), and change nothing, "
                        "not even on a store never migrated")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("replay", help="rebuild every ClickHouse table from the Kafka log (stop the worker first)",
                       description="Rebuild the hub's database from Kafka in a new database (the migrations, then "
                                   "every topic from its first offset to the end offsets taken at the start, through "
                                   "the same sinks as the worker), swap it in only once every topic is read to its "
                                   "end, and drop the old one. On any failure or after HUB_REPLAY_MAX_SECONDS the "
                                   "database stays as it was, the new one is dropped, and the command exits 2.")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (required without a terminal)")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="give up (keeping the database as it was) if the rebuild is not done in S seconds "
                        "(default HUB_REPLAY_MAX_SECONDS)")
    p.set_defaults(func=cmd_replay)


# ---- emit ---------------------------------------------------------------------------------
def _open(path: str):
    """The file's handle, opened now so that a missing file is reported before any connection."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def file_records(path: str, raw: bool) -> Iterable[tuple[bytes | None, bytes]]:
    """(key, value) pairs from JSON lines; the key is the record's correlation id."""
    return _file_records(path, _open(path), raw)


def _file_records(path: str, handle, raw: bool) -> Iterator[tuple[bytes | None, bytes]]:
    for number, line in enumerate(handle, 1):
        line = line.strip()
        if not line:
            continue
        if raw:
            yield None, line
            continue
        try:
            event = json.loads(line)
            key = event["data"]["correlation_id"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}:{number}: not a request-leg envelope with data.correlation_id "
                            "(use --raw to send it anyway)") from None
        yield str(key).encode(), line


def cmd_emit(args, settings: Settings) -> int:
    from hub.producer import send_records

    topic = args.topic or settings.topic_requests
    records: Iterable[tuple[bytes | None, bytes]]
    if args.count is not None:
        if args.count <= 0:
            raise UserError("--count must be a positive number")
        from hub.records.generate import generate_request_legs

        records = generate_request_legs(args.count, seed=args.seed, experiment_id=args.experiment)
    else:
        records = file_records(args.file, args.raw)
    progress = (lambda m: print(m, file=sys.stderr)) if sys.stderr.isatty() or args.count else None
    if args.batch < 1:
        raise UserError("--batch must be at least 1")
    batch = 1 if args.raw else args.batch
    count, seconds = send_records(settings.bootstrap, topic, records, progress=progress, events_per_record=batch)
    print(f"sent {count:,} events to {topic} in {seconds:.2f}s ({count / max(seconds, 1e-9):,.0f}/s), all acknowledged")
    return 0


# ---- sql ----------------------------------------------------------------------------------
def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID,)):
        return str(value)
    return str(value)


def run_query(settings: Settings, query: str) -> dict:
    stack = Stack(settings)
    if stack.worker_pid() is not None or stack.hub_answers():
        return stack.api("/v1/sql", {"query": query}, timeout=120)
    from hub.api.server import first_line
    from hub.sql import run_readonly, sql_limits
    from hub.storage.client import open_store

    from hub.api.server import mark_special_floats

    store = open_store(settings)
    try:
        result = run_readonly(store, query, limits=sql_limits(settings))
        result["rows"] = [mark_special_floats(row) for row in result["rows"]]  # as the HTTP API gives them
        return result
    except HubError:
        raise
    except Exception as exc:
        raise HubError(first_line(exc)) from None
    finally:
        store.close()


def print_result(result: dict, fmt: str, out=sys.stdout) -> None:
    columns, rows = result["columns"], result["rows"]
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(columns, row)), default=_cell) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        return
    cells = [[_cell(v) for v in row] for row in rows]
    if len(columns) == 1 and len(cells) == 1:
        out.write(cells[0][0] + "\n")  # a single value prints bare, for scripts
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")
    out.write(f"({len(cells)} row{'s' if len(cells) != 1 else ''})\n")


def cmd_sql(args, settings: Settings) -> int:
    try:
        result = run_query(settings, args.query)
    except UserError:
        raise
    except HubError as exc:
        raise UserError(f"query failed: {exc}") from None
    print_result(result, args.format)
    if result.get("truncated"):
        print(f"(cut at {result.get('max_rows', len(result['rows']))} rows: HUB_SQL_MAX_ROWS)", file=sys.stderr)
    return 0


# ---- migrate ------------------------------------------------------------------------------
def cmd_migrate(args, settings: Settings) -> int:
    from hub.storage.client import open_store
    from hub.storage.migrations import migrate, plan

    stack = Stack(settings)
    if settings.embedded_clickhouse and stack.worker_pid() is not None:
        print("the running hub owns the embedded store and applied its migrations at start-up")
        return 0
    dry_run = getattr(args, "dry_run", False)
    store = open_store(settings, create_database=not dry_run)
    try:
        if dry_run:
            state = plan(store)  # reads the store's record only: a store without one is left as it was
            for migration in state.applied:
                print(f"applied  {migration.path.name}  {migration.checksum}")
            for migration in state.pending:
                print(f"pending  {migration.path.name}  {migration.checksum}")
            print(f"{len(state.pending)} migration(s) pending; nothing changed (--dry-run)")
            return 0
        applied = migrate(store, settings, progress=print)
    finally:
        store.close()
    print(f"{len(applied)} migration(s) applied; the store is up to date")
    return 0


# ---- replay -------------------------------------------------------------------------------
def cmd_replay(args, settings: Settings) -> int:
    from hub.replay import replay

    if args.max_seconds is not None and args.max_seconds <= 0:
        raise UserError("--max-seconds must be a positive number")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("replay rebuilds the database and replaces it; pass --yes to confirm")
        answer = input(f"rebuild database {settings.database} from Kafka and replace it with the rebuild? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing done")
            return 1
    started = time.perf_counter()
    stored = replay(settings, progress=lambda line: print(line, flush=True), max_seconds=args.max_seconds)
    seconds = time.perf_counter() - started
    print(f"replayed in {seconds:.1f}s: " + ", ".join(f"{name} {rows:,} rows" for name, rows in stored.items()))
    return 0
