"""Rebuilds every ClickHouse projection from the Kafka log (``hub replay``), never leaving a half-built store.

Everything in the hub's database is a projection of Kafka topics: request legs, OpenTelemetry
data, dead letters, the experiment events and the sink's ledger. Replay rebuilds it beside the
live one and swaps only a whole rebuild in:

1. A new database ``<database>_replay_<UTC time>`` gets the migrations (fresh tables, fresh
   deduplication logs too). The hub's database is not touched.
2. The end offset of every partition of every topic is taken once, at the start. Each topic is
   read from its first offset up to those ends and stored through the same exactly-once sinks
   the worker uses, with the whole experiment log known up front, so records are placed on the
   same experiments and phases as they were live. Dead letters are stored again but not published
   to the dead-letter topic again.
3. Only when every partition of every topic has been read to its end offset is the new database
   swapped in: the hub's database is renamed aside (``<database>_previous_<UTC time>``), the new
   one is renamed to the hub's name, the views are re-pointed at their tables under the new name
   (a plain view keeps the database name it was created with), and the previous one is dropped.
   If a rename fails, the renames already made are undone. ``RENAME DATABASE`` needs an Atomic
   database, the default engine of chDB and ClickHouse.
4. On any failure before the swap (a broker or store error, an interrupt, or partitions still
   unread when ``HUB_REPLAY_MAX_SECONDS`` has passed since the start), the new database is
   dropped, the hub's database stays exactly as it was, and ``ReplayFailed`` says why in one line.

While it runs, the store holds both databases: it needs room for a second copy of the data. A
replay stopped by SIGTERM or SIGINT (Ctrl-C) before the swap drops its half-built database, with
a fresh connection to the store (the interrupted one may be in the middle of a request), and then
exits (143 for SIGTERM, 130 for SIGINT); during that clean-up further SIGTERM/SIGINT are held
back. A replay killed outright (SIGKILL) leaves its half-built database beside the hub's; the
next replay drops it. One killed while swapping leaves ``<database>_previous_<time>``: the next replay renames
it back if the hub's database is missing, or else finishes the swap (and drops it once it has
swapped its own rebuild in), before it starts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import signal
import threading
import time
from typing import Callable

from hub.errors import HubError, UserError
from hub.experiments.registry import ExperimentRegistry
from hub.pipeline import redactor_for, sink_specs
from hub.records.decode import RawMessage
from hub.runtime.consume import read_to_end
from hub.runtime.fetch import KafkaRangeFetcher
from hub.settings import Settings
from hub.storage.client import Store, open_store
from hub.redaction.dead_letters import RedactingDeadLetterPublisher
from hub.retry import NO_WAIT, retry
from hub.storage.migrations import migrate
from hub.storage.sink import ExactlyOnceSink

Progress = Callable[[str], None]
#: Seconds between two progress lines while a topic is read.
PROGRESS_SECONDS = 5.0


class ReplayFailed(UserError):
    """The rebuild did not complete; the hub's database is as it was and the new one is dropped."""


class ReplayIncomplete(HubError):
    """Partitions were still unread when the replay's time ran out."""


def replay(settings: Settings, progress: Progress = print, batch: int = 20_000,
           max_seconds: float | None = None) -> dict[str, int]:
    """Rebuild the database from Kafka beside the live one and swap it in; returns rows stored per sink.

    Raises ``ReplayFailed`` (the hub's database untouched, the new one dropped) when anything fails.
    """
    from hub.runtime.stack import Stack

    if Stack(settings).worker_pid() is not None:
        raise UserError("the hub's worker is running; stop it first (`hub down`), replay, then `hub up`")
    max_seconds = settings.replay_max_seconds if max_seconds is None else max_seconds
    deadline = time.monotonic() + max_seconds
    target = settings.database
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    work = settings.with_overrides(database=f"{target}_replay_{stamp}")
    store = open_store(work, create_database=False)
    created = False
    try:
        with _terminate_as_exit():
            try:
                stale = _clear_leftovers(store, target, progress)
                progress(f"building database {work.database} beside {target}")
                created = True  # before the statement: a signal may arrive as it returns
                store.command(f"CREATE DATABASE {work.database}")
                migrate(store, work)
                stored = _rebuild(work, store, progress, batch, deadline, max_seconds)
                _swap(store, work.database, target, f"{target}_previous_{stamp}", progress)
                created = False
                for name in stale:
                    _drop(store, name)
                return stored
            except BaseException as exc:
                if created:
                    with _signals_held():
                        left = _drop_fresh(work, store, work.database)
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        how = "SIGINT" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
                        progress(f"interrupted ({how}): " + (
                            f"could not drop {work.database} ({left}); the next replay drops it"
                            if left else f"dropped {work.database}") + f"; database {target} left as it was")
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ReplayFailed(f"replay failed, database {target} left as it was: {reason}") from exc
    finally:
        store.close()


#: Exit status of a replay stopped by SIGTERM (128 + the signal's number, as a shell reports it).
TERMINATED = 128 + signal.SIGTERM


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM raises ``SystemExit(143)`` in the main thread and SIGINT raises KeyboardInterrupt,
    so that the replay's clean-up runs; the previous handlers are restored afterwards. SIGINT's
    handler is set here too: a process started in the background of a shell inherits SIGINT
    ignored, and Python then leaves it ignored, so ``kill -INT`` would let the replay run on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(TERMINATED)

    previous = signal.signal(signal.SIGTERM, terminate)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def _signals_held():
    """SIGTERM and SIGINT wait (blocked, delivered once this ends) while the clean-up runs."""
    held = {signal.SIGTERM, signal.SIGINT}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _drop_fresh(work: Settings, store: Store, database: str) -> str:
    """Drop ``database`` after an interrupt: on a fresh connection first (the interrupted one may
    be stuck in its request, or its session still locked by it), then on ``store``. Returns ''
    once the database is gone, else the last error."""
    tried = 0

    def drop() -> str:
        nonlocal tried
        tried += 1
        fresh = None
        try:
            fresh = open_store(work, create_database=False) if tried < 3 else store
            fresh.command(f"DROP DATABASE IF EXISTS {database} SYNC")
            return ""
        finally:
            if fresh is not None and fresh is not store:
                with contextlib.suppress(Exception):
                    fresh.close()

    try:
        return retry(drop, retry_on=(Exception,), backoff=NO_WAIT, attempts=3)
    except Exception as exc:  # noqa: BLE001 - reported, and the next replay drops it
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _rebuild(work: Settings, store: Store, progress: Progress, batch: int, deadline: float,
             max_seconds: float) -> dict[str, int]:
    specs = sink_specs(work, None)
    ends = end_offsets(work.bootstrap, [spec.topic for spec in specs])
    total = sum(end - begin for parts in ends.values() for begin, end in parts.values())
    progress(f"end offsets taken: {total:,} records in {len(ends)} topics to read")
    registry = ExperimentRegistry(work.bootstrap, work.topic_experiments).load_all()
    progress(f"experiment log: {len(registry.states)} experiment(s)")
    dead_letters = RedactingDeadLetterPublisher(store, work.bootstrap, work.topic_dlq, publish=False,
                                       redactor=redactor_for(work))
    stored: dict[str, int] = {}
    fetcher = KafkaRangeFetcher(work.bootstrap)
    try:
        for spec in sink_specs(work, registry):
            sink = ExactlyOnceSink(store, spec, dead_letters, fetcher)
            count = _replay_topic(work.bootstrap, spec.topic, ends.get(spec.topic, {}), sink, batch, deadline,
                                  max_seconds, progress)
            stored[spec.name] = sink.stats.stored
            progress(f"  {spec.topic}: {count:,} records read, {sink.stats.stored:,} rows stored, "
                     f"{sink.stats.invalid:,} dead letters")
    finally:
        fetcher.close()
    return stored


def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, dict[int, tuple[int, int]]]:
    """``topic -> partition -> (first offset, end offset)`` now, for every partition of the topics."""
    from kafka import TopicPartition

    from hub.runtime import clients

    consumer = clients.consumer(bootstrap)
    try:
        out: dict[str, dict[int, tuple[int, int]]] = {}
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not tps:
                out[topic] = {}
                continue
            begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
            out[topic] = {tp.partition: (begins[tp], ends[tp]) for tp in tps}
        return out
    finally:
        consumer.close()


def _replay_topic(bootstrap: str, topic: str, bounds: dict[int, tuple[int, int]], sink: ExactlyOnceSink,
                  batch: int, deadline: float, max_seconds: float, progress: Progress) -> int:
    """Store the topic's records below the end offsets taken at the start; ``ReplayIncomplete``
    if a partition is not read to its end offset by the deadline."""
    from kafka import TopicPartition

    from hub.runtime import clients

    pending = {TopicPartition(topic, p): end for p, (begin, end) in bounds.items() if end > begin}
    if not pending:
        return 0
    total = sum(end - bounds[tp.partition][0] for tp, end in pending.items())
    consumer = clients.consumer(bootstrap, auto_offset_reset="earliest", max_poll_records=batch)

    def incomplete(unread: dict) -> ReplayIncomplete:
        where = ", ".join(f"[{tp.partition}] at {position} of {end}"
                          for tp, (position, end) in sorted(unread.items(), key=lambda i: i[0].partition))
        return ReplayIncomplete(f"{topic} not read to its end within HUB_REPLAY_MAX_SECONDS="
                                f"{max_seconds:g}: partitions {where}")

    try:
        count = 0
        said = time.monotonic()
        for records in read_to_end(consumer, pending, deadline=deadline, timed_out=incomplete, poll_ms=1000):
            messages = [RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in records]
            if messages:
                sink.write(messages)
                count += len(messages)
            if time.monotonic() - said >= PROGRESS_SECONDS:
                said = time.monotonic()
                progress(f"  {topic}: {count:,} of {total:,} records read")
        return count
    finally:
        consumer.close()


def _clear_leftovers(store: Store, target: str, progress: Progress) -> list[str]:
    """Undo or finish what a killed replay left: a half-built database is dropped; a swap stopped
    between its two renames is undone (the previous database renamed back); one stopped after them
    is finished (views re-pointed). Returns the previous databases to drop once this replay is
    swapped in (kept until then: they may hold what the hub's database is missing)."""
    names = _databases(store)
    previous = sorted(n for n in names if n.startswith(f"{target}_previous_"))
    if previous and target not in names:
        progress(f"renaming {previous[-1]} back to {target}: a replay was stopped while swapping")
        store.command(f"RENAME DATABASE {previous[-1]} TO {target}")
        previous.pop()
    elif previous:
        progress(f"finishing the swap of a replay stopped after it: re-pointing the views of {target}; "
                 f"{', '.join(previous)} dropped once this replay is swapped in")
        _repoint_views(store, target, re.compile(rf"\b{re.escape(target)}_replay_\w+\."))
    for name in sorted(n for n in names if n.startswith(f"{target}_replay_")):
        progress(f"dropping {name}, left by a replay that did not finish")
        _drop(store, name)
    return previous


def _databases(store: Store) -> set[str]:
    return {row[0] for row in store.query("SELECT name FROM system.databases").result_rows}


def _swap(store: Store, new: str, target: str, previous: str, progress: Progress) -> None:
    """Put database ``new`` in place of ``target``; the old one is dropped once the new one is in place."""
    had_target = target in _databases(store)
    if had_target:
        store.command(f"RENAME DATABASE {target} TO {previous}")
    try:
        store.command(f"RENAME DATABASE {new} TO {target}")
    except BaseException:
        if had_target:
            store.command(f"RENAME DATABASE {previous} TO {target}")
        raise
    try:
        _repoint_views(store, target, re.compile(rf"\b{re.escape(new)}\."))
    except BaseException:
        store.command(f"RENAME DATABASE {target} TO {new}")
        if had_target:
            store.command(f"RENAME DATABASE {previous} TO {target}")
        raise
    progress(f"swapped: {target} is the rebuilt database")
    if had_target:
        _drop(store, previous)


def _repoint_views(store: Store, database: str, old_name: re.Pattern) -> None:
    """Re-create the views of ``database`` that still name the database by ``old_name`` (matching
    ``<name>.``, its name when they were made)."""
    rows = store.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} "
        "AND engine IN ('View', 'MaterializedView') ORDER BY name", parameters={"db": database}).result_rows
    for name, ddl in rows:
        if not old_name.search(ddl):
            continue
        store.command(f"DROP TABLE IF EXISTS {database}.{name} SYNC")
        store.command(old_name.sub(f"{database}.", ddl))


def _drop(store: Store, database: str) -> None:
    try:
        store.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    except Exception:  # the failure being reported matters more than the leftover database
        pass
