"""Exactly-once effects from at-least-once delivery: the sink that writes Kafka records to ClickHouse.

How it holds (the proof the kill tests check):

1. Records of one topic partition are written in batches ("chunks") whose offset range
   ``[first, last]`` is recorded in ``sink_ledger`` *before* the rows are inserted, one entry per
   first offset (point 9).
2. The rows are inserted with ``insert_deduplication_token = <sink>:<topic>:<partition>:<first>-<last>``;
   the table keeps a deduplication window, so a repeat of the same insert (or of the parts of
   it that had landed before a crash) is dropped by the store.
3. A chunk's ledger entry is written only once the rows of every chunk of that partition but
   the one before it are stored: the worker's sink (``pipelined``) places a batch on the
   experiment timelines and inserts its rows in the background while the next batch gathers
   and is decoded and entered, and waits for that insert before handing over the next one. So
   every offset below the first of the partition's *two* last ledger entries is stored.
4. When a partition is (re)assigned, or a pipelined insert of it raised, the sink reads its
   two last ledger entries, fetches exactly those offsets from Kafka again, re-inserts them
   with the same tokens, and from then on skips every record at or below the last entry's
   ``last`` offset.
5. Kafka offsets are committed only after a chunk is entered in the ledger (the agent acks
   afterwards), so the broker never moves past records that are not in the ledger; the ledger
   makes early or late commits harmless anyway.

What a record can do wrong changes none of this (every derived token below is a function of the
chunk's token and of the chunk's rows, which a replay of the same offsets decodes the same):

6. Rows the store refuses for what they are (``StoreRejected``: a wrong type, a value out of
   the column's range) are isolated: the insert is split in halves, each with a token derived
   from its parent's (``<token>/a``, ``<token>/b``; single rows ``<token>/r<i>``), until every
   refused row stands alone; those are dead-lettered with the engine's reason (token
   ``<token>:rejected``), the others stored. A refusal is a property of the rows, so a replay of
   the same offsets refuses the first insert again, takes the same splits and produces the same
   tokens: what landed before is dropped by the store. (A refused insert stores nothing, so the
   chunk's own token never holds a part of it; and the batch keeps its refused rows, so a
   retried step of the same batch makes the same inserts too.)
7. Rows spanning more days than the store takes in one insert block (its PARTITION BY key,
   ``MAX_PARTITIONS_PER_INSERT``) are split by day first, in day order, each group under
   ``<token>/p<k>``; the same rows always give the same groups.
8. A decoder or a placement that raises on a chunk is run again message by message; a message
   that still raises becomes a dead letter with the error as its reason, its neighbours go on.
   The same messages raise again on a replay, so the result (rows and dead letters) is the same.

9. Two writers of one partition at once (a worker expelled from the consumer group, its session
   timed out on a busy machine, goes on with the batch it holds while the new owner, which read
   the ledger before that batch was entered, writes the same offsets in other chunks): each chunk
   is entered under a token of its partition and first offset alone (``<sink>:<topic>:<partition>:
   <first>:entry``), which the store keeps once, and the entry that holds the first offset is read
   back. A writer whose entry was dropped takes the standing entry's range: a longer chunk than
   its own is completed from the broker, a shorter one is written under the standing token and
   the rest entered anew from the next offset. Every writer then follows one chain of entries from
   the ledger's last entry, and inserts each range under its one token.

A crash at any instant therefore loses nothing (offsets are only skipped once stored) and
duplicates nothing (the only re-insert carries the same token).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

import msgspec

from hub.errors import InvalidRecord, RecoverableError, StoreRejected
from hub.records.decode import RawMessage
from hub.records.rows import compile_row
from hub.retry import Backoff, retry
from hub.storage.client import Store, first_line

log = logging.getLogger(__name__)

LEDGER_COLUMNS = ("sink", "topic", "partition", "first_offset", "last_offset", "token", "rows", "invalid")
#: ``ledger_entry(sink=, topic=, partition=, first_offset=, last_offset=, token=, rows=, invalid=)``: a
#: ``sink_ledger`` row in ``LEDGER_COLUMNS`` order, each value passed by its column's name.
ledger_entry = compile_row("sink_ledger", LEDGER_COLUMNS, {c: c for c in LEDGER_COLUMNS},
                           "*, " + ", ".join(LEDGER_COLUMNS))


class Decoded(Protocol):
    """What a sink's decode function returns: rows for the spec's table, and invalid records.

    A decoder that fills several tables (OpenTelemetry metrics) also has ``tables``: a list of
    ``(table, columns, rows)``; each is inserted with its own token derived from the chunk's.
    """

    rows: list
    invalid: list


@dataclass(frozen=True)
class SinkSpec:
    """What one sink stores: a topic's records, decoded by a batch function, into a table."""

    name: str
    topic: str
    table: str
    columns: Sequence[str]
    decode: Callable[[Sequence[RawMessage]], Decoded]
    # Applied to every chunk of a batch at once, after all of them are decoded and entered in the
    # ledger: the placement on experiment timelines (and redaction). It may wait for the timeline
    # to cover the newest record; a pipelined sink runs it in its insert thread, so that wait
    # overlaps with the gathering of the next batch instead of holding it back.
    place: Callable[[list], list] | None = None
    # Called once a chunk is stored (and again when a crash made it be stored again), before the
    # chunk is acknowledged: derived records for other topics, e.g. the shadow pairs.
    after_store: Callable[[str, Decoded], None] | None = None
    # Called once the chunk is entered in the ledger and placed, before its rows are inserted:
    # derived records that must not wait for the insert (the judge's rollups). The ledger entry fixes the
    # chunk's bounds, so a chunk written again after a crash passes the same token here again and
    # a consumer that counts each token once (the judge) counts the chunk once.
    after_ledger: Callable[[str, Decoded], None] | None = None


class DeadLetters(Protocol):
    """Where invalid records go: the dead-letter topic and table."""

    max_bytes: int  # a dead letter's size bound (HUB_DEAD_LETTER_MAX_BYTES)

    def publish(self, invalid: Sequence, raws: Sequence[RawMessage], token: str) -> None: ...


class RangeFetcher(Protocol):
    def fetch(self, topic: str, partition: int, first: int, last: int) -> list[RawMessage]: ...


@dataclass
class SinkStats:
    stored: int = 0
    skipped: int = 0
    invalid: int = 0
    batches: int = 0
    recovered_batches: int = 0
    #: Seconds spent in each step of a write, summed: ``decode``, ``place`` (waiting for the
    #: experiment timeline to cover the batch, correlating, redacting), ``ledger`` (the ledger
    #: entries), ``after_ledger`` (the judge's rollups), ``insert`` (the rows) and
    #: ``after_store`` (derived records such as the stream pairs).
    phase_seconds: dict = field(default_factory=lambda: defaultdict(float))
    invalid_by_reason: dict = field(default_factory=lambda: defaultdict(int))
    #: Rows stored per table (what ``stored`` adds up), for ``hub status``.
    stored_by_table: dict = field(default_factory=lambda: defaultdict(int))

    @property
    def insert_seconds(self) -> float:
        """Seconds spent writing, every step after the decoding."""
        return sum(v for k, v in list(self.phase_seconds.items()) if k != "decode")

    def as_dict(self) -> dict:
        return {
            "stored": self.stored, "skipped": self.skipped, "invalid": self.invalid,
            "batches": self.batches, "recovered_batches": self.recovered_batches,
            "insert_seconds": round(self.insert_seconds, 3),
            "phase_seconds": {k: round(v, 3) for k, v in list(self.phase_seconds.items())},
            "invalid_by_reason": dict(self.invalid_by_reason),
            "stored_by_table": dict(self.stored_by_table),
        }


def reason_kind(reason: str) -> str:
    """The counter label of a dead-letter reason: the words before the first colon."""
    return reason.split(":", 1)[0].strip() or "unknown"


#: Dead-letter reasons of rows the store refused, of messages a decoder or a placement raised on.
REJECTED = "rejected by the store"
DECODE_FAILED = "decode failed"
PLACE_FAILED = "placement failed"

T = TypeVar("T")


def isolate_rejected(items: Sequence[T], insert: Callable[[Sequence[T], str], None], token: str,
                     per_row_below: int = 4) -> list[tuple[T, str]]:
    """Insert ``items`` under ``token``; when the store refuses them (``StoreRejected``), split
    them in halves (tokens ``<token>/a`` and ``<token>/b``) and go on until each refused item
    stands alone; a part of fewer than ``per_row_below`` items is tried item by item
    (``<token>/r<i>``). Returns the refused items with the store's reason, in order.

    Deterministic: the same items refused the same way give the same inserts and tokens, so a
    replay is dropped by the store's deduplication. ``StoreUnavailable`` is raised as is (the
    caller retries the whole write; what landed is dropped then)."""
    try:
        insert(items, token)
        return []
    except StoreRejected as exc:
        if len(items) == 1:
            return [(items[0], exc.reason)]
        if len(items) < per_row_below:
            refused: list[tuple[T, str]] = []
            for i, item in enumerate(items):
                try:
                    insert([item], f"{token}/r{i}")
                except StoreRejected as row_exc:
                    refused.append((item, row_exc.reason))
            return refused
    middle = len(items) // 2
    return (isolate_rejected(items[:middle], insert, token + "/a", per_row_below)
            + isolate_rejected(items[middle:], insert, token + "/b", per_row_below))


#: ClickHouse refuses an insert block that spans more partitions (``max_partitions_per_insert_block``,
#: 100 by default). One less: a day in UTC can straddle two days of another time zone's key.
MAX_PARTITIONS_PER_INSERT = 99
_DAY_KEY = re.compile(r"^\s*(toDate|toDate32|toStartOfDay|toYYYYMMDD|toStartOfWeek|toMonday|toYYYYMM|"
                      r"toStartOfMonth|toStartOfQuarter|toStartOfYear|toYear)\(\s*`?(\w+)`?\s*(,[^)]*)?\)\s*$")
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()


def day_of(value: Any) -> int | None:
    """The UTC day (days since 1970-01-01) of a time value as the sink holds it: a datetime, a
    date, or a number of seconds, milliseconds, microseconds or nanoseconds since the epoch
    (told apart by magnitude). None when it cannot be read."""
    try:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.timezone.utc)
            return value.toordinal() - _EPOCH_DAY
        if isinstance(value, dt.date):
            return value.toordinal() - _EPOCH_DAY
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            magnitude = abs(value)
            seconds = value / 1e9 if magnitude >= 1e17 else value / 1e6 if magnitude >= 1e14 else \
                value / 1e3 if magnitude >= 1e11 else value
            return int(seconds // 86400)
    except (OverflowError, ValueError, OSError):
        return None
    return None


def day_key_column(partition_key: str, columns: Sequence[str]) -> int | None:
    """The position in ``columns`` of the time column a table is partitioned by, when its key is a
    function of one time column that is never finer than a day (``toDate(event_time)``)."""
    match = _DAY_KEY.match(partition_key or "")
    if match is None or match.group(2) not in columns:
        return None
    return list(columns).index(match.group(2))


def partition_groups(rows: Sequence[Sequence[Any]], column: int | None,
                     limit: int = MAX_PARTITIONS_PER_INSERT) -> list[list[int]]:
    """Positions of ``rows`` in groups that each span at most ``limit`` days of ``column``
    (days in ascending order, rows of a group in their order). One group when the rows span
    ``limit`` days or fewer, or when the table's key is not by day (``column`` None). Rows whose
    day cannot be read form a group of their own."""
    if column is None or not rows:
        return [list(range(len(rows)))]
    try:  # the common case, cheaply: the oldest and the newest row are fewer days apart
        values = list(map(itemgetter(column), rows))
        first, last = day_of(min(values)), day_of(max(values))
        if first is not None and last is not None and last - first < limit:
            return [list(range(len(rows)))]
    except (TypeError, ValueError):
        pass
    days = [day_of(row[column]) for row in rows]
    distinct = sorted({d for d in days if d is not None})
    if len(distinct) + (None in days) <= limit:
        return [list(range(len(rows)))]
    group_of = {day: i // limit for i, day in enumerate(distinct)}
    unreadable = (len(distinct) + limit - 1) // limit
    groups: list[list[int]] = [[] for _ in range(unreadable + 1)]
    for position, day in enumerate(days):
        groups[unreadable if day is None else group_of[day]].append(position)
    return [g for g in groups if g]


@dataclass
class MergedBatch:
    """A chunk decoded (or placed) message by message after the decoder raised on the whole:
    the same shape as a decoder's result."""

    rows: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    tables: list = field(default_factory=list)


def merge_batches(parts: Sequence[Any], invalid: Sequence[InvalidRecord] = ()) -> MergedBatch:
    """One batch of the rows, tables and invalid records of ``parts`` (in order)."""
    merged = MergedBatch(invalid=list(invalid))
    tables: dict[str, tuple[Sequence[str], list]] = {}
    for part in parts:
        merged.rows.extend(part.rows)
        merged.invalid.extend(part.invalid)
        for table, columns, rows in getattr(part, "tables", ()):
            tables.setdefault(table, (columns, []))[1].extend(rows)
    merged.invalid.sort(key=lambda i: (i.offset, i.index))
    merged.tables = [(table, columns, rows) for table, (columns, rows) in tables.items()]
    return merged


class SinkHealth:
    """What a sink is doing, for ``/health``, ``/ready`` and ``hub status``: ``ok``, ``stalled``
    (retrying a recoverable error: since when, the last error, the partitions waiting) or
    ``crashed`` (its agent stopped). Thread-safe: the agent and the insert thread report here."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._stalls: dict[str, dict] = {}  # where ("write", "insert") -> stall
        self.crashed: dict | None = None
        self.errors = 0  # unexpected errors survived (a step that raised, a retried batch)
        self.last_error = ""

    def stalled(self, where: str, exc: BaseException, partitions: Iterable[int] = ()) -> None:
        with self._lock:
            stall = self._stalls.get(where)
            if stall is None:
                stall = self._stalls[where] = {"since": time.time(), "retries": 0}
            stall["retries"] += 1
            stall["error"] = first_line(exc)
            stall["partitions"] = sorted(set(partitions))

    def recovered(self, where: str) -> None:
        if where in self._stalls:
            with self._lock:
                self._stalls.pop(where, None)

    def failed(self, exc: BaseException) -> None:
        """An unexpected error the sink survived (counted, shown as the last error)."""
        with self._lock:
            self.errors += 1
            self.last_error = first_line(exc)

    def crash(self, exc: BaseException) -> None:
        with self._lock:
            self.crashed = {"since": time.time(), "error": first_line(exc)}

    @property
    def state(self) -> str:
        return "crashed" if self.crashed else "stalled" if self._stalls else "ok"

    def stalled_seconds(self, now: float | None = None) -> float:
        with self._lock:
            starts = [stall["since"] for stall in self._stalls.values()]
        return round((now or time.time()) - min(starts), 3) if starts else 0.0

    def problems(self) -> list[dict]:
        """``{"sink", "state", "partition", "error", "since"}`` for each problem (none when ok);
        ``partition`` is None when the whole sink is affected."""
        out = []
        with self._lock:
            if self.crashed:
                out.append({"sink": self.name, "state": "crashed", "partition": None,
                            "error": self.crashed["error"], "since": _iso(self.crashed["since"])})
            for stall in self._stalls.values():
                for partition in stall["partitions"] or [None]:
                    out.append({"sink": self.name, "state": "stalled", "partition": partition,
                                "error": stall["error"], "since": _iso(stall["since"]),
                                "retries": stall["retries"]})
        return out


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


def lag_problems(name: str, lags: dict[int, int], max_lag: int, since: dict[int, float] | None = None) -> list[dict]:
    """``lagging`` problems of a sink: partitions whose consumer lag is above ``max_lag`` records."""
    return [{"sink": name, "state": "lagging", "partition": partition,
             "error": f"{lag} records not stored yet (more than {max_lag})",
             "since": _iso((since or {}).get(partition, time.time()))}
            for partition, lag in sorted(lags.items()) if lag > max_lag]


class ExactlyOnceSink:
    """Writes chunks of raw records to ClickHouse so that each record is stored exactly once."""

    def __init__(self, store: Store, spec: SinkSpec, dead_letters: DeadLetters, fetcher: RangeFetcher,
                 pipelined: bool = False):
        """``pipelined``: ``write`` returns once the batch is in the ledger (and its rollups are
        sent), and the rows are inserted by a thread of the sink's own while the caller gathers
        and enters the next batch; ``flush`` waits for that insert, which is retried while the
        store is away. Without it, ``write`` returns once the rows are stored."""
        self.store = store
        self.spec = spec
        self.dead_letters = dead_letters
        self.fetcher = fetcher
        self.stats = SinkStats()
        # partition -> highest offset in the ledger (stored, or being inserted); absent until
        # recovered after assignment
        self._stored_up_to: dict[int, int] = {}
        # partition -> highest offset whose rows are in the store (the pipelined insert has
        # returned): what health counts as no longer waiting, whatever Kafka's commit says
        self.landed: dict[int, int] = {}
        self.pipelined = pipelined
        self._closing = threading.Event()
        self._inserts = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{spec.name}-insert") \
            if pipelined else None
        self._inflight: Future | None = None
        self._inflight_partitions: list[int] = []
        self.health = SinkHealth(spec.name)
        # table -> position of its day column in the columns inserted (None: not split by day)
        self._day_columns: dict[tuple, int | None] = {}
        # chunk token -> {table: rows decoded}: a refused row maps to its source message by its
        # position only while placement kept every row (else its source is the whole chunk)
        self._decoded_counts: dict[str, dict[str, int]] = {}

    # ---- partition lifecycle -------------------------------------------------------------
    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions were revoked or reassigned: recover from the ledger before the next write."""
        for partition in partitions:
            self._stored_up_to.pop(partition, None)
            self.landed.pop(partition, None)

    def last_ledger_entries(self, partition: int, n: int = 2) -> list[tuple[int, int]]:
        """The partition's ``n`` last ledger entries, oldest first (a retried batch may have
        entered a chunk twice: each range counts once)."""
        rows = self.store.query(
            f"SELECT DISTINCT first_offset, last_offset FROM {self.store.database}.sink_ledger "
            "WHERE sink = {sink:String} AND topic = {topic:String} AND partition = {p:UInt32} "
            "ORDER BY first_offset DESC, last_offset DESC LIMIT {n:UInt32}",
            parameters={"sink": self.spec.name, "topic": self.spec.topic, "p": partition, "n": n},
        ).result_rows
        return [(int(first), int(last)) for first, last in reversed(rows)]

    def recover(self, partition: int) -> int:
        """Make the partition's two last ledger entries whole again; returns the offset stored up to."""
        entries = self.last_ledger_entries(partition)
        if not entries:
            self._stored_up_to[partition] = -1
            return -1
        for first, last in entries:
            messages = self.fetcher.fetch(self.spec.topic, partition, first, last)
            if messages and messages[0].offset == first and messages[-1].offset == last:
                self._write_chunk(partition, messages, recovering=True)
            else:
                # The broker no longer has those offsets (retention); nothing can be re-inserted.
                log.warning("sink %s: offsets %d-%d of %s[%d] are gone from the broker; not re-checked",
                            self.spec.name, first, last, self.spec.topic, partition)
        last = entries[-1][1]
        self._stored_up_to[partition] = last
        self.landed[partition] = last
        return last

    def recover_assigned(self, partitions: Iterable[int]) -> None:
        """Recover newly assigned partitions at once rather than at their next record: a chunk
        entered in the ledger just before a crash is stored even if its partition receives
        nothing more. A failure here (the store away) leaves the partition to the lazy recovery of
        ``write``, which retries."""
        for partition in partitions:
            if partition in self._stored_up_to:
                continue
            try:
                self.flush()
                self.recover(partition)
            except Exception as exc:  # recovered again before the partition's next write
                self._stored_up_to.pop(partition, None)
                log.warning("sink %s: recovering %s[%d] on assignment failed (%s); it is recovered "
                            "before its next write", self.spec.name, self.spec.topic, partition, exc)

    def flush(self) -> None:
        """Wait until the rows of every batch handed to ``write`` are stored (pipelined mode);
        raises what a background insert raised."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            try:
                inflight.result()
            except BaseException:
                # Its chunks are in the ledger: recovered (written again) before the next write to
                # those partitions, rather than taken as stored.
                self.forget(self._inflight_partitions)
                raise

    def close(self) -> None:
        """Flush and stop the insert thread. An insert the store does not take now is given up:
        its chunk is in the ledger, and the next start (of any worker) stores it."""
        self._closing.set()
        try:
            self.flush()
        except Exception as exc:
            log.warning("sink %s: the last batch is not stored (%s); it is in the ledger and is stored "
                        "when its partition is next assigned", self.spec.name, exc)
        finally:
            if self._inserts is not None:
                self._inserts.shutdown(wait=True)

    # ---- writing -----------------------------------------------------------------------
    def write(self, messages: Sequence[RawMessage]) -> int:
        """Store a batch of records (any partitions, each partition in offset order).

        Returns the number of rows stored now. Raises RecoverableError when nothing of the
        batch may be acknowledged; calling again with the same records is always safe.
        """
        by_partition: dict[int, list[RawMessage]] = defaultdict(list)
        for message in messages:
            by_partition[message.partition].append(message)
        # Two passes: every partition's chunk is decoded and entered in the ledger (and its rollups
        # sent) before any chunk's rows are inserted, so that the judge hears of all partitions
        # without waiting for the inserts. Each partition's chunks still follow one another.
        chunks = []
        for partition, chunk in by_partition.items():
            threshold = self._stored_up_to.get(partition)
            if threshold is None:
                self.flush()  # the batch being inserted lands before the ledger is read
                threshold = self.recover(partition)
            fresh = [m for m in chunk if m.offset > threshold]
            self.stats.skipped += len(chunk) - len(fresh)
            if fresh:
                chunks.append((partition, fresh))
        work = self._enter_chunks(chunks)
        if not self.pipelined:
            return self._store_all(self._announce(work))
        # The batch before this one must be stored before this one is placed and inserted (point 3
        # above); it was placed and inserted while this batch was gathered, decoded and entered.
        self.flush()
        for partition, entered, _, _ in work:
            self._stored_up_to[partition] = entered[-1].offset
        if work:
            assert self._inserts is not None  # pipelined
            self._inflight_partitions = [partition for partition, _, _, _ in work]
            self._inflight = self._inserts.submit(self._finish, work)
        return sum(len(decoded.rows) for _, _, _, decoded in work)

    def _finish(self, work: list) -> int:
        """The second half of a pipelined write, in the sink's insert thread: placement, rollups,
        rows; each step retried while the store is away."""
        placed = self.retry(lambda: self._announce(work), "insert", [p for p, _, _, _ in work])
        return self.retry(lambda: self._store_all(placed, track=False), "insert", [p for p, _, _, _ in work])

    def retry(self, fn: Callable[[], Any], where: str, partitions: Iterable[int] = (),
              should_stop: Callable[[], bool] | None = None) -> Any:
        """``retry_recoverable`` with the sink's health kept: stalled while it retries."""
        partitions = list(partitions)
        result = retry_recoverable(fn, should_stop or self._closing.is_set,
                                   on_retry=lambda exc: self.health.stalled(where, exc, partitions))
        self.health.recovered(where)
        return result

    def _store_all(self, work: list, track: bool = True) -> int:
        stored = 0
        for partition, fresh, token, decoded in work:
            stored += self._store_chunk(partition, fresh, token, decoded)
            self.landed[partition] = fresh[-1].offset
            if track:
                self._stored_up_to[partition] = fresh[-1].offset
        return stored

    def _write_chunk(self, partition: int, chunk: Sequence[RawMessage], recovering: bool = False) -> int:
        [(_, _, token, decoded)] = self._announce(self._enter_chunks([(partition, chunk)], recovering=recovering))
        return self._store_chunk(partition, chunk, token, decoded, recovering=recovering)

    def _token(self, partition: int, chunk: Sequence[RawMessage]) -> str:
        return f"{self.spec.name}:{self.spec.topic}:{partition}:{chunk[0].offset}-{chunk[-1].offset}"

    def _decode_chunks(self, chunks: Sequence[tuple[int, Sequence[RawMessage]]]) -> list[tuple[int, Sequence[RawMessage], str, Decoded]]:
        t0 = time.perf_counter()
        out = []
        for partition, chunk in chunks:
            token, decoded = self._token(partition, chunk), self._decode(chunk)
            self._decoded_counts[token] = _row_counts(self.spec.table, decoded)
            out.append((partition, chunk, token, decoded))
        self.stats.phase_seconds["decode"] += time.perf_counter() - t0
        return out

    def _enter_chunks(self, chunks: Sequence[tuple[int, Sequence[RawMessage]]],
                      recovering: bool = False) -> list[tuple[int, Sequence[RawMessage], str, Decoded]]:
        """Decode chunks (each one partition's records, in offset order) and enter them in the
        ledger: the first half of a write, after which the batch may be acknowledged. Returns
        ``(partition, chunk, token, decoded)`` of the chunks as entered (point 9: a chunk another
        writer had entered first from the same offset is cut or completed to that entry's range).
        A chunk being recovered already has its entry."""
        work = self._decode_chunks(chunks)
        if recovering or not work:
            return work
        started = time.perf_counter()
        entered: list = []
        while work:
            winners = self._claim(work)
            retry: list[tuple[int, Sequence[RawMessage]]] = []
            for partition, chunk, token, decoded in work:
                last = winners[(partition, chunk[0].offset)]
                if last == chunk[-1].offset:
                    entered.append((partition, chunk, token, decoded))
                    continue
                log.warning("sink %s: %s[%d] from offset %d is entered up to %d by another writer (this one had "
                            "up to %d); its range is taken", self.spec.name, self.spec.topic, partition,
                            chunk[0].offset, last, chunk[-1].offset)
                self._decoded_counts.pop(token, None)
                if last < chunk[-1].offset:
                    head = [m for m in chunk if m.offset <= last]
                    entered.extend(self._decode_chunks([(partition, head)]))
                    retry.append((partition, [m for m in chunk if m.offset > last]))
                else:
                    more = self.fetcher.fetch(self.spec.topic, partition, chunk[-1].offset + 1, last)
                    whole = list(chunk) + [m for m in more if chunk[-1].offset < m.offset <= last]
                    if whole[-1].offset != last:  # gone from the broker: the entry's token, what is left
                        log.warning("sink %s: offsets up to %d of %s[%d] are gone from the broker",
                                    self.spec.name, last, self.spec.topic, partition)
                    [(p, c, whole_token, d)] = self._decode_chunks([(partition, whole)])
                    token = f"{self.spec.name}:{self.spec.topic}:{partition}:{chunk[0].offset}-{last}"
                    self._decoded_counts[token] = self._decoded_counts.pop(whole_token)
                    entered.append((p, c, token, d))
            work = self._decode_chunks(retry)
        self.stats.phase_seconds["ledger"] += time.perf_counter() - started
        order = {p: i for i, (p, _) in enumerate(chunks)}
        return sorted(entered, key=lambda w: (order[w[0]], w[1][0].offset))

    def _claim(self, work: list) -> dict[tuple[int, int], int]:
        """Enter each chunk in the ledger under a token of its first offset alone, and read back which
        entry holds each first offset: ``(partition, first) -> last``. The store keeps the first insert
        of a token and drops the later ones, so of two writers of one partition (one of them expelled
        from the consumer group and not aware of it yet) starting a chunk at the same offset, exactly
        one entry stands and both take its range (point 9)."""
        for partition, chunk, token, d in work:
            entry = ledger_entry(sink=self.spec.name, topic=self.spec.topic, partition=partition,
                                 first_offset=chunk[0].offset, last_offset=chunk[-1].offset, token=token,
                                 rows=len(d.rows) + sum(len(t[2]) for t in getattr(d, "tables", ())),
                                 invalid=len(d.invalid))
            claim = f"{self.spec.name}:{self.spec.topic}:{partition}:{chunk[0].offset}:entry"
            self.store.insert(f"{self.store.database}.sink_ledger", [entry], LEDGER_COLUMNS, token=claim)
        keys = ", ".join(f"({int(partition)}, {int(chunk[0].offset)})" for partition, chunk, _, _ in work)
        # One entry per first offset; should two stand (the first fell out of the deduplication window,
        # or both were made before entries were claimed), the one written first holds it.
        rows = self.store.query(
            f"SELECT partition, first_offset, argMin(last_offset, (written_at, last_offset)) "
            f"FROM {self.store.database}.sink_ledger WHERE sink = {{sink:String}} AND topic = {{topic:String}} "
            f"AND (partition, first_offset) IN ({keys}) GROUP BY partition, first_offset",
            parameters={"sink": self.spec.name, "topic": self.spec.topic}).result_rows
        found = {(int(p), int(first)): int(last) for p, first, last in rows}
        return {(partition, chunk[0].offset): found.get((partition, chunk[0].offset), chunk[-1].offset)
                for partition, chunk, _, _ in work}

    def _announce(self, work: list) -> list:
        """Place a batch's entered chunks (``(partition, chunk, token, decoded)``) on experiment
        timelines, then ``after_ledger`` (the rollups): the step before the rows are inserted.
        Placement may wait for the timelines to cover the batch; in a pipelined sink that wait
        runs in the insert thread, while the next batch gathers."""
        if not work:
            return work
        phases = self.stats.phase_seconds
        started = time.perf_counter()
        decoded = self._place(work)
        placed = time.perf_counter()
        phases["place"] += placed - started
        if self.spec.after_ledger is not None:
            for (_, _, token, _), d in zip(work, decoded):
                self._guarded("after_ledger", self.spec.after_ledger, token, d)
        phases["after_ledger"] += time.perf_counter() - placed
        return [(partition, chunk, token, d) for (partition, chunk, token, _), d in zip(work, decoded)]

    def _store_chunk(self, partition: int, chunk: Sequence[RawMessage], token: str, decoded: Decoded,
                     recovering: bool = False) -> int:
        """Insert a chunk already entered in the ledger (then ``after_store`` and dead letters).

        Rows the store refuses are isolated and dead-lettered (points 6 and 7 above)."""
        started = time.perf_counter()
        stored_rows = 0
        refused: list[tuple[str, int, str]] = []  # (table, position, reason)
        main = self.spec.table
        if main:
            for position, reason in self._insert_isolating(main, self.spec.columns, decoded.rows, token):
                refused.append((main, position, reason))
            stored_rows += len(decoded.rows)
        for table, columns, rows in getattr(decoded, "tables", ()):
            for position, reason in self._insert_isolating(table, columns, rows, f"{token}:{table}"):
                refused.append((table, position, reason))
            stored_rows += len(rows)
        stored_rows -= len(refused)
        inserted = time.perf_counter()
        self.stats.phase_seconds["insert"] += inserted - started
        rejected: list[InvalidRecord] = []
        stored_view = decoded
        if refused:
            rejected = self._refused_records(chunk, token, decoded, refused)
            refused_main = {position for table, position, _ in refused if table == main}
            if refused_main:
                # Derived records (the stream pairs) come from the rows stored only. The batch itself
                # stays whole: a retry of this step must make the same inserts (and tokens).
                stored_view = MergedBatch(rows=[row for i, row in enumerate(decoded.rows) if i not in refused_main],
                                          invalid=list(decoded.invalid),
                                          tables=list(getattr(decoded, "tables", ())))
        if self.spec.after_store is not None:
            self._guarded("after_store", self.spec.after_store, token, stored_view)
        self.stats.phase_seconds["after_store"] += time.perf_counter() - inserted
        by_offset = {m.offset: m for m in chunk}
        if decoded.invalid:
            raws = [by_offset[i.offset] for i in decoded.invalid]
            self.dead_letters.publish(decoded.invalid, raws, token + ":dlq")
        if rejected:
            self.dead_letters.publish(rejected, [by_offset[i.offset] for i in rejected], token + ":rejected")
        self._decoded_counts.pop(token, None)
        if recovering:
            self.stats.recovered_batches += 1
            return 0
        self.stats.batches += 1
        self.stats.stored += stored_rows
        tables = [(main, len(decoded.rows))] if main else []
        tables += [(table, len(rows)) for table, _, rows in getattr(decoded, "tables", ())]
        for table, rows in tables:
            kept = rows - sum(1 for t, _, _ in refused if t == table)
            if kept:
                self.stats.stored_by_table[table] += kept
        self.stats.invalid += len(decoded.invalid) + len(rejected)
        for invalid in list(decoded.invalid) + rejected:
            self.stats.invalid_by_reason[reason_kind(invalid.reason)] += 1
        return stored_rows

    # ---- what a record can do wrong ---------------------------------------------------------
    def _decode(self, chunk: Sequence[RawMessage]) -> Decoded:
        """The spec's decoder on the chunk; if it raises, on each message alone (point 8)."""
        try:
            return self.spec.decode(chunk)
        except RecoverableError:
            raise
        except Exception as exc:  # noqa: BLE001 - any input must end as rows or dead letters
            log.warning("sink %s: decoding %s[%d] %d-%d raised %s; decoding its records one by one",
                        self.spec.name, chunk[0].topic, chunk[0].partition, chunk[0].offset, chunk[-1].offset,
                        first_line(exc))
            return self._each_message(chunk, lambda message: self.spec.decode([message]), DECODE_FAILED)

    def _each_message(self, chunk: Sequence[RawMessage], fn: Callable[[RawMessage], Any], kind: str) -> MergedBatch:
        parts, failed = [], []
        for message in chunk:
            try:
                parts.append(fn(message))
            except RecoverableError:
                raise
            except Exception as exc:  # noqa: BLE001
                failed.append(InvalidRecord(f"{kind}: {type(exc).__name__}: {first_line(exc)}"[:1000],
                                            message.topic, message.partition, message.offset))
        return merge_batches(parts, failed)

    def _place(self, work: list) -> list:
        """The spec's placement of a batch's chunks; if it raises, each chunk is decoded again
        and placed alone, and a chunk that still raises message by message (point 8)."""
        decoded = [d for _, _, _, d in work]
        place = self.spec.place
        if place is None:
            return decoded
        try:
            return place(decoded)
        except RecoverableError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("sink %s: placing a batch raised %s; placing its chunks one by one",
                        self.spec.name, first_line(exc))
        out = []
        for partition, chunk, token, _ in work:
            # decoded again: the placement may have changed the batch before it raised
            fresh = self._decode(chunk)
            counts: dict[str, int] | None = _row_counts(self.spec.table, fresh)
            try:
                [placed] = place([fresh])
            except RecoverableError:
                raise
            except Exception:  # noqa: BLE001
                invalid = list(fresh.invalid)
                failed = {i.offset for i in invalid if i.index < 0}
                placed = self._each_message(
                    [m for m in chunk if m.offset not in failed],
                    lambda message: place([self.spec.decode([message])])[0], PLACE_FAILED)
                placed.invalid = sorted([i for i in invalid if i.offset in failed] + placed.invalid,
                                        key=lambda i: (i.offset, i.index))
                counts = None  # rows of the records that failed are gone: a refused row maps to the chunk
            if counts is None:
                self._decoded_counts.pop(token, None)
            else:
                self._decoded_counts[token] = counts
            out.append(placed)
        return out

    def _guarded(self, step: str, fn: Callable, token: str, decoded: Decoded) -> None:
        """A step after the ledger (rollups, derived records): a broker error is retried like the
        store's; anything else is logged and counted, never the end of the sink."""
        try:
            fn(token, decoded)
        except RecoverableError:
            raise
        except Exception as exc:  # noqa: BLE001
            if _is_transient_kafka_error(exc):
                raise RecoverableError(f"{step}: {first_line(exc)}") from exc
            self.health.failed(exc)
            log.error("sink %s: %s of %s raised %s; its rows are stored, its derived records are not",
                      self.spec.name, step, token, first_line(exc), exc_info=True)

    def _insert_isolating(self, table: str, columns: Sequence[str], rows: list, token: str) -> list[tuple[int, str]]:
        """Insert rows, split by day when they span too many partitions (point 7), each part with
        its refused rows isolated (point 6). Returns the positions of the refused rows and why."""
        if not rows:
            return []
        full = f"{self.store.database}.{table}"
        key = (table, tuple(columns))
        if key not in self._day_columns:
            self._day_columns[key] = day_key_column(self.store.partition_key(full), columns)
        groups = partition_groups(rows, self._day_columns[key])
        everything = len(groups) == 1

        def insert(positions: Sequence[int], part_token: str) -> None:
            part = rows if everything and len(positions) == len(rows) else [rows[p] for p in positions]
            self.store.insert(full, part, columns, token=part_token)

        refused: list[tuple[int, str]] = []
        for k, positions in enumerate(groups):
            refused.extend(isolate_rejected(positions, insert, token if everything else f"{token}/p{k}"))
        if refused:
            log.warning("sink %s: the store refused %d of %d rows for %s (%s); dead-lettered",
                        self.spec.name, len(refused), len(rows), table, refused[0][1])
        return refused

    def _refused_records(self, chunk: Sequence[RawMessage], token: str, decoded: Decoded,
                         refused: list[tuple[str, int, str]]) -> list[InvalidRecord]:
        """Dead letters of refused rows, each at its source message (and event index)."""
        counts = self._decoded_counts.get(token)
        current = _row_counts(self.spec.table, decoded)
        sources: dict[str, list[tuple[int, int]]] | None = None
        if counts is not None and counts == current:
            sources = _row_sources(self.spec, chunk, decoded)
        out = []
        for table, position, reason in refused:
            source = (sources or {}).get(table)
            if source is not None and position < len(source):
                offset, index = source[position]
                text = f"{REJECTED}: {reason}"
            else:
                offset, index = chunk[0].offset, -1
                text = f"{REJECTED}: {reason} (a row of offsets {chunk[0].offset}-{chunk[-1].offset})"
            out.append(InvalidRecord(text[:1000], chunk[0].topic, chunk[0].partition, offset, index=index))
        return out


def _row_counts(main: str, decoded: Any) -> dict[str, int]:
    counts = {main: len(decoded.rows)} if main else {}
    for table, _, rows in getattr(decoded, "tables", ()):
        counts[table] = len(rows)
    return counts


_LIST_OF_RAW = msgspec.json.Decoder(list[msgspec.Raw])


def _row_sources(spec: SinkSpec, chunk: Sequence[RawMessage], decoded: Any) -> dict[str, list[tuple[int, int]]]:
    """``table -> [(offset, index)]`` parallel to the rows of each table: from the decoder's
    ``sources`` when it gives them, else by decoding each message of the chunk alone (a decoder
    is deterministic, and keeps its rows in message order). ``index`` is the event's position in a
    batch record when each event gave one row, else -1 (the whole record)."""
    given = getattr(decoded, "sources", None)
    if given is not None and spec.table and len(given) == len(decoded.rows) \
            and not getattr(decoded, "tables", ()):
        return {spec.table: [(int(o), int(i)) for o, i in given]}
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for message in chunk:
        try:
            alone = spec.decode([message])
        except Exception:  # noqa: BLE001 - it became a dead letter already
            continue
        counts = _row_counts(spec.table, alone)
        bad = sorted(i.index for i in alone.invalid if i.index >= 0)
        for table, n in counts.items():
            indexes = [-1] * n
            if table == spec.table and n:
                indexes = _event_indexes(message, n, bad)
            out[table].extend((message.offset, index) for index in indexes)
    return out


def _event_indexes(message: RawMessage, rows: int, bad: list[int]) -> list[int]:
    """The batch-record positions of ``rows`` good events, when the record is a JSON array whose
    every event gave a row or a dead letter; else -1 for each."""
    try:
        events = len(_LIST_OF_RAW.decode(message.value or b""))
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return [-1] * rows
    if events != rows + len(bad):
        return [-1] * rows
    skip = set(bad)
    return [i for i in range(events) if i not in skip]


def _is_transient_kafka_error(exc: BaseException) -> bool:
    try:
        from kafka.errors import KafkaError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False) or
                                                 type(exc).__name__ in ("KafkaTimeoutError", "NoBrokersAvailable"))


def retry_recoverable(fn: Callable[[], Any], should_stop: Callable[[], bool] = lambda: False,
                      sleep: Callable[[float], None] = time.sleep,
                      on_retry: Callable[[BaseException], None] | None = None) -> Any:
    """The sink's retry policy (``hub.retry``): call ``fn`` until it does not raise RecoverableError (the store or
    the broker is away): back-pressure, with a delay doubling from 0.2 s to 10 s. Any other error
    (``StoreRejected`` among them) is raised at once: retrying the same data cannot help."""
    def note(exc: BaseException, delay: float) -> None:
        if on_retry is not None:
            on_retry(exc)
        log.warning("store unavailable, retrying in %.1fs: %s", delay, exc)

    return retry(fn, retry_on=(RecoverableError,), backoff=STORE_BACKOFF, should_stop=should_stop,
                 on_retry=note, sleep=sleep)


#: The sink's waits for the store or the broker: 0.2 s doubling to 10 s, without end.
STORE_BACKOFF = Backoff(0.2, cap=10.0)


def write_with_retry(sink: ExactlyOnceSink, messages: Sequence[RawMessage],
                     should_stop: Callable[[], bool] = lambda: False,
                     sleep: Callable[[float], None] = time.sleep) -> int:
    """Write until the store takes the batch: the consumer waits (back-pressure) instead of acking."""
    partitions = {m.partition for m in messages}
    result = retry_recoverable(lambda: sink.write(messages), should_stop, sleep,
                               on_retry=lambda exc: sink.health.stalled("write", exc, partitions))
    sink.health.recovered("write")
    return result
