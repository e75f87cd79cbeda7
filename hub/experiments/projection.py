"""The experiment log's projection: events from ``hub.experiments`` as ``experiment_events`` rows,
each with the lifecycle fold's verdict on it.

Every event that decodes is stored (``experiment_events`` is the full audit trail, forged and
refused events included); every row says whether the fold accepted it (``accepted``) and, if not,
why (``refusal``). The SQL views of experiments (``schemas/clickhouse/0015_*.sql``) read accepted
rows only, so they show what ``hub experiment show`` shows; ``experiment_refused_events`` lists the
others with their reasons. Records that do not decode (empty, oversized, nested too deep, not
JSON, wrong types, times the column cannot hold) are dead letters, as before.

The verdict on the event at offset X is the decision of ``hub.experiments.lifecycle.apply`` (the
fold the registry runs) given the experiment's accepted events before X, in log order. Events are
keyed by experiment id, so one experiment's timeline is in one partition and ordered, and a
partition's fold state is enough to judge its next event. An event whose record key is another
experiment's id is refused (``wrong key``): it may sit in another partition than the experiment's
timeline, where its place in the timeline is not defined. (The registry folds every partition in
the order it reads them, so for such an event, or an unkeyed one outside the experiment's
partition, its verdict could differ from this one; the hub's own writers always key events by
experiment id.) An event the fold takes as a repeat of
one already applied (same sequence and event id, an at-least-once redelivery) changes nothing;
it is stored with ``accepted = 0`` and a ``duplicate`` refusal, so the views count it once.

How the fold state stays deterministic (across worker restarts, rebalances, a retried batch and
``hub replay``): ``ExperimentProjection`` keeps, per partition, the fold state of every experiment
in it and the offset up to which it has folded. A chunk that starts exactly there is judged from
that state. Any other chunk (the first after an assignment, a chunk re-inserted during recovery,
a batch decoded again after a failed ledger write) first re-derives the state by folding the
partition's log from its first offset up to the chunk's first offset, read from Kafka. That is
the definition of the verdict itself, read from the source of truth, so the same offsets always
get the same verdicts, whatever was stored before; no stored row is trusted, and nothing depends
on what a pipelined insert has or has not landed yet. The experiment log is small (lifecycle
steps, not telemetry), so the re-read on assignment costs little.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Final, Sequence

from hub.errors import InvalidRecord
from hub.experiments.events import EVENT_COLUMNS, EVENT_NAMESPACE, EVENT_VALUES, BadEvent, Event, decode_event
from hub.experiments.lifecycle import ExperimentState, InvalidTransition, apply
from hub.records.decode import DecodedBatch, RawMessage
from hub.records.rows import compile_row

log = logging.getLogger(__name__)

#: Columns of ``{db}.experiment_events`` the sink inserts, in order: the event's columns, the fold's
#: verdict and the record's place in the log.
PROJECTION_COLUMNS: Final[tuple[str, ...]] = EVENT_COLUMNS + ("accepted", "refusal", "source_partition",
                                                             "source_offset")
#: Each projection column's value, by name: the event's (``EVENT_VALUES``, of the event ``e``), the
#: fold's ``refusal`` (``""``: accepted) and the record's ``partition`` and ``offset``.
PROJECTION_VALUES: Final[dict[str, str]] = {**EVENT_VALUES, "accepted": "0 if refusal else 1", "refusal": "refusal",
                                            "source_partition": "partition", "source_offset": "offset"}
_row: Final = compile_row("experiment_events", PROJECTION_COLUMNS, PROJECTION_VALUES, "e, refusal, partition, offset",
                          EVENT_NAMESPACE)

#: ``history(topic, partition, end)``: the partition's records from its first offset up to ``end``
#: (excluded), in offset order.
History = Callable[[str, int, int], Sequence[RawMessage]]


def verdict(states: dict[str, ExperimentState], event: Event, key: bytes | None) -> str:
    """The fold's decision on ``event`` given ``states`` (updated in place when accepted):
    ``""`` when accepted, else the reason it was refused."""
    if key is not None and key != event.experiment_id.encode():
        return (f"wrong key: the record's key {key[:80]!r} is not the experiment id, so the event is not "
                "ordered with the experiment's timeline")
    before = states.get(event.experiment_id)
    try:
        after = apply(before, event)
    except InvalidTransition as exc:
        return f"refused: {exc}"
    except Exception as exc:  # a fold that fails on an input is a refusal, never a stalled sink
        log.warning("the lifecycle fold failed on event %s", event.event_id, exc_info=True)
        return f"refused: the fold failed: {type(exc).__name__}: {str(exc)[:200]}"
    if after is before:
        return f"duplicate: event {event.event_id} (sequence {event.sequence}) is already in the timeline"
    states[event.experiment_id] = after
    return ""


@dataclass
class _PartitionFold:
    next_offset: int  # every record below this offset is folded in
    states: dict[str, ExperimentState] = field(default_factory=dict)


class ExperimentProjection:
    """The experiment sink's decoder: rows with the fold's verdict, and dead letters."""

    def __init__(self, history: History, max_bytes: int):
        self.history = history
        self.max_bytes = max_bytes
        self._folds: dict[tuple[str, int], _PartitionFold] = {}
        self.rebuilds = 0  # how often a partition's state was re-derived from the log

    def _fold_at(self, topic: str, partition: int, offset: int) -> _PartitionFold:
        """The partition's fold state just before ``offset``."""
        fold = self._folds.get((topic, partition))
        if fold is not None and fold.next_offset == offset:
            return fold
        self.rebuilds += 1
        fold = _PartitionFold(next_offset=offset)
        if offset > 0:
            for m in self.history(topic, partition, offset):
                if m.offset < offset:
                    self._judge(fold, m)
        self._folds[(topic, partition)] = fold
        return fold

    def _judge(self, fold: _PartitionFold, m: RawMessage) -> tuple[Event | None, str | BadEvent]:
        fold.next_offset = m.offset + 1
        if m.value and len(m.value) > self.max_bytes:
            return None, BadEvent(f"oversized: {len(m.value)} bytes > {self.max_bytes}")
        try:
            event = decode_event(m.value or b"")
        except BadEvent as exc:
            return None, exc
        return event, verdict(fold.states, event, m.key)

    def decode(self, messages: Sequence[RawMessage]) -> DecodedBatch:
        """Rows in ``PROJECTION_COLUMNS`` order for one partition's chunk (in offset order)."""
        rows: list[tuple] = []
        invalid: list[InvalidRecord] = []
        fold = None
        for m in messages:
            if fold is None or fold.next_offset != m.offset:
                fold = self._fold_at(m.topic, m.partition, m.offset)
            event, outcome = self._judge(fold, m)
            if isinstance(outcome, BadEvent):
                invalid.append(InvalidRecord(outcome.reason, m.topic, m.partition, m.offset))
                continue
            assert event is not None  # a verdict is given on a decoded event only
            rows.append(_row(event, outcome, m.partition, m.offset))
        return DecodedBatch(rows, invalid)

    def forget(self, topic: str, partition: int) -> None:
        self._folds.pop((topic, partition), None)


class KafkaHistory:
    """Reads a partition from its first offset up to an end offset, outside any consumer group."""

    def __init__(self, bootstrap: str, timeout: float = 60.0):
        self.bootstrap = bootstrap
        self.timeout = timeout

    def __call__(self, topic: str, partition: int, end: int) -> list[RawMessage]:
        import time

        from kafka import TopicPartition

        from hub.errors import RecoverableError
        from hub.runtime import clients
        from hub.runtime.consume import read_to_end

        def timed_out(unread: dict) -> RecoverableError:
            return RecoverableError(f"reading {topic}[{partition}] up to offset {end} timed out")

        consumer = clients.consumer(self.bootstrap, auto_offset_reset="earliest", max_poll_records=10_000)
        try:
            out: list[RawMessage] = []
            for records in read_to_end(consumer, {TopicPartition(topic, partition): end},
                                       deadline=time.monotonic() + self.timeout, timed_out=timed_out):
                out.extend(RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in records)
            return out
        finally:
            consumer.close()


def decode_experiment_events(messages: Sequence[RawMessage], max_bytes: int,
                             history: History | None = None) -> DecodedBatch:
    """One chunk judged on its own (the fold state re-derived from ``history``, or empty without it)."""
    return ExperimentProjection(history or (lambda topic, partition, end: []), max_bytes).decode(messages)
