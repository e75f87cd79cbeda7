"""Exactly-once effects from at-least-once delivery: the sink that writes Kafka records to ClickHouse.

How it holds (the proof the kill tests check):

1. Records of one topic partition are written in batches ("chunks") whose offset range
   ``[first, last]`` is recorded in ``sink_ledger`` *before* the rows are inserted.
2. The rows are inserted with ``insert_deduplication_token = <sink>:<topic>:<partition>:<first>-<last>``;
   the table keeps a deduplication window, so a repeat of the same insert (or of the parts of
   it that had landed before a crash) is dropped by the store.
3. A chunk's ledger entry is written only once the rows of every chunk of that partition but
   the one before it are stored: the worker's sink (``pipelined``) places a batch on the
   experiment timelines and inserts its rows in the background while the next batch gathers
   and is decoded and entered, and waits for that insert before handing over the next one. So
   every offset below the first of the partition's *two* last ledger entries is stored.
4. When a partition is (re)assigned, the sink reads its two last ledger entries, fetches exactly
   those offsets from Kafka again, re-inserts them with the same tokens, and from then on skips
   every record at or below the last entry's ``last`` offset.
5. Kafka offsets are committed only after a chunk is entered in the ledger (the agent acks
   afterwards), so the broker never moves past records that are not in the ledger; the ledger
   makes early or late commits harmless anyway.

A crash at any instant therefore loses nothing (offsets are only skipped once stored) and
duplicates nothing (the only re-insert carries the same token).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from hub.errors import RecoverableError
from hub.records.decode import RawMessage
from hub.storage.client import Store

log = logging.getLogger(__name__)

LEDGER_COLUMNS = ("sink", "topic", "partition", "first_offset", "last_offset", "token", "rows", "invalid")


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
        }


def reason_kind(reason: str) -> str:
    """The counter label of a dead-letter reason: the words before the first colon."""
    return reason.split(":", 1)[0].strip() or "unknown"


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
        self.pipelined = pipelined
        self._closing = threading.Event()
        self._inserts = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{spec.name}-insert") \
            if pipelined else None
        self._inflight: Future | None = None

    # ---- partition lifecycle -------------------------------------------------------------
    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions were revoked or reassigned: recover from the ledger before the next write."""
        for partition in partitions:
            self._stored_up_to.pop(partition, None)

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
        return last

    def flush(self) -> None:
        """Wait until the rows of every batch handed to ``write`` are stored (pipelined mode);
        raises what a background insert raised."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.result()

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
        work = [(partition, fresh, token, decoded)
                for (partition, fresh), (token, decoded) in zip(chunks, self._enter_chunks(chunks))]
        if not self.pipelined:
            return self._store_all(self._announce(work))
        # The batch before this one must be stored before this one is placed and inserted (point 3
        # above); it was placed and inserted while this batch was gathered, decoded and entered.
        self.flush()
        for partition, fresh, _, _ in work:
            self._stored_up_to[partition] = fresh[-1].offset
        if work:
            self._inflight = self._inserts.submit(self._finish, work)
        return sum(len(decoded.rows) for _, _, _, decoded in work)

    def _finish(self, work: list) -> int:
        """The second half of a pipelined write, in the sink's insert thread: placement, rollups,
        rows; each step retried while the store is away."""
        placed = retry_recoverable(lambda: self._announce(work), self._closing.is_set)
        return retry_recoverable(lambda: self._store_all(placed, track=False), self._closing.is_set)

    def _store_all(self, work: list, track: bool = True) -> int:
        stored = 0
        for partition, fresh, token, decoded in work:
            stored += self._store_chunk(partition, fresh, token, decoded)
            if track:
                self._stored_up_to[partition] = fresh[-1].offset
        return stored

    def _write_chunk(self, partition: int, chunk: Sequence[RawMessage], recovering: bool = False) -> int:
        [(token, decoded)] = self._enter_chunks([(partition, chunk)], recovering=recovering)
        [(_, _, token, decoded)] = self._announce([(partition, chunk, token, decoded)])
        return self._store_chunk(partition, chunk, token, decoded, recovering=recovering)

    def _enter_chunks(self, chunks: Sequence[tuple[int, Sequence[RawMessage]]],
                      recovering: bool = False) -> list[tuple[str, Decoded]]:
        """Decode chunks (each one partition's records, in offset order) and write their ledger
        entries: the first half of a write, after which the batch may be acknowledged. Every chunk
        of the batch is entered in one ledger insert; a chunk being recovered already has its entry."""
        if not chunks:
            return []
        phases = self.stats.phase_seconds
        t0 = time.perf_counter()
        tokens = [f"{self.spec.name}:{self.spec.topic}:{partition}:{chunk[0].offset}-{chunk[-1].offset}"
                  for partition, chunk in chunks]
        decoded = [self.spec.decode(chunk) for _, chunk in chunks]
        started = time.perf_counter()
        phases["decode"] += started - t0
        if not recovering:
            entries = [[self.spec.name, self.spec.topic, partition, chunk[0].offset, chunk[-1].offset, token,
                        len(d.rows) + sum(len(t[2]) for t in getattr(d, "tables", ())), len(d.invalid)]
                       for (partition, chunk), token, d in zip(chunks, tokens, decoded)]
            # A retried batch has the same chunks, so the same token: the store keeps one entry each.
            ledger_token = tokens[0] + ":ledger" if len(tokens) == 1 else \
                "ledger:" + hashlib.sha256(",".join(tokens).encode()).hexdigest()
            self.store.insert(f"{self.store.database}.sink_ledger", entries, LEDGER_COLUMNS, token=ledger_token)
        entered = time.perf_counter()
        phases["ledger"] += entered - started
        return list(zip(tokens, decoded))

    def _announce(self, work: list) -> list:
        """Place a batch's entered chunks (``(partition, chunk, token, decoded)``) on experiment
        timelines, then ``after_ledger`` (the rollups): the step before the rows are inserted.
        Placement may wait for the timelines to cover the batch; in a pipelined sink that wait
        runs in the insert thread, while the next batch gathers."""
        if not work:
            return work
        phases = self.stats.phase_seconds
        started = time.perf_counter()
        decoded = [d for _, _, _, d in work]
        if self.spec.place is not None:
            decoded = self.spec.place(decoded)
        placed = time.perf_counter()
        phases["place"] += placed - started
        if self.spec.after_ledger is not None:
            for (_, _, token, _), d in zip(work, decoded):
                self.spec.after_ledger(token, d)
        phases["after_ledger"] += time.perf_counter() - placed
        return [(partition, chunk, token, d) for (partition, chunk, token, _), d in zip(work, decoded)]

    def _store_chunk(self, partition: int, chunk: Sequence[RawMessage], token: str, decoded: Decoded,
                     recovering: bool = False) -> int:
        """Insert a chunk already entered in the ledger (then ``after_store`` and dead letters)."""
        started = time.perf_counter()
        self.store.insert(f"{self.store.database}.{self.spec.table}", decoded.rows,
                          self.spec.columns, token=token)
        stored_rows = len(decoded.rows)
        for table, columns, rows in getattr(decoded, "tables", ()):
            self.store.insert(f"{self.store.database}.{table}", rows, columns, token=f"{token}:{table}")
            stored_rows += len(rows)
        inserted = time.perf_counter()
        self.stats.phase_seconds["insert"] += inserted - started
        if self.spec.after_store is not None:
            self.spec.after_store(token, decoded)
        self.stats.phase_seconds["after_store"] += time.perf_counter() - inserted
        if decoded.invalid:
            by_offset = {m.offset: m for m in chunk}
            raws = [by_offset[i.offset] for i in decoded.invalid]
            self.dead_letters.publish(decoded.invalid, raws, token + ":dlq")
        if recovering:
            self.stats.recovered_batches += 1
            return 0
        self.stats.batches += 1
        self.stats.stored += stored_rows
        self.stats.invalid += len(decoded.invalid)
        for invalid in decoded.invalid:
            self.stats.invalid_by_reason[reason_kind(invalid.reason)] += 1
        return stored_rows


def retry_recoverable(fn: Callable[[], object], should_stop: Callable[[], bool] = lambda: False,
                      sleep: Callable[[float], None] = time.sleep) -> object:
    """Call ``fn`` until it does not raise RecoverableError (the store is away): back-pressure."""
    delay = 0.2
    while True:
        try:
            return fn()
        except RecoverableError as exc:
            if should_stop():
                raise
            log.warning("store unavailable, retrying in %.1fs: %s", delay, exc)
            sleep(delay)
            delay = min(delay * 2, 10.0)


def write_with_retry(sink: ExactlyOnceSink, messages: Sequence[RawMessage],
                     should_stop: Callable[[], bool] = lambda: False,
                     sleep: Callable[[float], None] = time.sleep) -> int:
    """Write until the store takes the batch: the consumer waits (back-pressure) instead of acking."""
    return retry_recoverable(lambda: sink.write(messages), should_stop, sleep)
