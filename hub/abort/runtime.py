"""The judge inside a worker: fed by the rollup agent, rebuilt from the log when partitions arrive."""

from __future__ import annotations

import logging
import time

import orjson

from hub.abort.actions import AlertActions
from hub.abort.rollup import BadRollup
from hub.abort.run import RunJudges, RunSpan
from hub.records.decode import too_deep
from hub.runtime.consume import read_to_end
from hub.experiments.registry import ExperimentRegistry
from hub.settings import Settings
from hub.storage.client import first_line
from hub.storage.sink import SinkHealth

log = logging.getLogger(__name__)


class DerivedRecordPublisher:
    """Sends the records derived from a stored chunk to one topic before the chunk is acknowledged:
    its rollups to ``hub.rollups`` (the default topic), its shadow pairs to ``hub.pairs``."""

    def __init__(self, settings: Settings, topic: str | None = None):
        self.settings = settings
        self.topic = topic or settings.topic_rollups
        self._producer = None

    def _producer_(self):
        if self._producer is None:
            from hub.runtime import clients

            self._producer = clients.producer(self.settings.bootstrap, settings=self.settings, acks="all",
                                              retries=5, linger_ms=0)
        return self._producer

    def partitions(self) -> list[int]:
        """The topic's partition ids (from the producer's metadata)."""
        producer = self._producer_()
        found = producer.partitions_for(self.topic)
        return sorted(found) if found else []

    def publish(self, records: list[tuple]) -> None:
        """``(key, value)`` records, or ``(key, value, partition)`` for an explicit partition."""
        if not records:
            return
        producer = self._producer_()
        futures = [producer.send(self.topic, key=r[0], value=r[1], partition=r[2] if len(r) > 2 else None)
                   for r in records]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)


class JudgeRuntime:
    def __init__(self, settings: Settings, registry: ExperimentRegistry, actions: AlertActions | None = None):
        self.settings = settings
        self.registry = registry
        self.actions = actions or AlertActions(settings, experiment_of=registry.states.get)
        self.judge = RunJudges(self._conditions, self.actions, horizon=settings.judge_horizon,
                               idle=settings.judge_idle, run_of=self._run_of,
                               clock_experiments=self._clock_experiments)
        self._rebuilt: set[int] = set()
        #: how far the alerts topic has been read (partition -> next offset): each rebuild reads only what is new
        self._alerts_read: dict[int, int] = {}
        #: partitions of the rollups topic this worker holds (its judges); None: all (no consumer group)
        self.owned: set[int] | None = set()
        self._partition_count: int | None = None
        self.processed = 0
        #: records of the judge's topics that are not what they claim (skipped, counted, logged)
        self.skipped: dict[str, int] = {}
        #: the judge in ``/health``: ``crashed`` when its agent stopped, ``stalled`` while it errs
        self.health = SinkHealth("judge")

    def _conditions(self, experiment_id: str):
        state = self.registry.states.get(experiment_id)
        if state is None:
            # The rollup may overtake the registry by a moment; wait briefly for the log.
            self.registry.wait_until_known(time.time(), max_wait=5.0)
            state = self.registry.states.get(experiment_id)
        return None if state is None else list(state.definition.abort_conditions)

    def _run_of(self, experiment_id: str) -> RunSpan | None:
        state = self.registry.states.get(experiment_id)
        return None if state is None else RunSpan.of(state)

    def _clock_experiments(self) -> list[str]:
        """Running experiments with an ``absence`` rule whose rollups this worker judges: their
        absence counts from the start, whether or not a record of theirs ever arrives."""
        out = []
        for experiment_id, state in list(self.registry.states.items()):
            if state.status != "running" or not any(c.measurement == "absence"
                                                     for c in state.definition.abort_conditions):
                continue
            if self.owned is None or self._partition_of(experiment_id) in self.owned:
                out.append(experiment_id)
        return out

    def _partition_of(self, experiment_id: str) -> int | None:
        """The rollups partition of an experiment (rollups are keyed by its id: the producer's
        default partitioner, murmur2 of the key)."""
        from kafka.partitioner.default import murmur2

        if self._partition_count is None:
            from hub.runtime import clients

            consumer = clients.consumer(self.settings.bootstrap)
            try:
                self._partition_count = len(consumer.partitions_for_topic(self.settings.topic_rollups) or ()) or None
            finally:
                consumer.close()
            if self._partition_count is None:
                return None
        return (murmur2(experiment_id.encode()) & 0x7FFFFFFF) % self._partition_count

    def assigned(self, partitions) -> None:
        """Rollup partitions given to this worker (its judges' share of the experiments)."""
        self.owned = (self.owned or set()) | set(partitions)

    def revoked(self, partitions) -> None:
        if self.owned is not None:
            self.owned -= set(partitions)

    def forget(self, partitions) -> None:
        for p in partitions:
            self._rebuilt.discard(p)

    def skip(self, topic: str, reason: str, partition: int | None = None, offset: int | None = None) -> None:
        """A record that is not what its topic holds: counted and logged, never fatal."""
        self.skipped[topic] = self.skipped.get(topic, 0) + 1
        where = f"{topic}[{partition}]@{offset}" if partition is not None else topic
        log.warning("judge: skipped a record of %s: %s", where, reason)

    def _add_rollup(self, value: bytes, partition: int | None = None, offset: int | None = None) -> int:
        try:
            return len(self.judge.add_rollup(value))
        except BadRollup as exc:
            self.skip(self.settings.topic_rollups, str(exc), partition, offset)
            return 0

    def process(self, items: list) -> int:
        """Rollups from the agent as (partition, value) or (partition, offset, value); returns alerts
        raised. Never raises: a bad record is skipped and counted, an unexpected error is logged and
        shown in the judge's health until a later batch goes through."""
        raised = 0
        for item in items:
            partition, value = item[0], item[-1]
            offset = item[1] if len(item) > 2 else None
            if partition not in self._rebuilt:
                try:
                    self.rebuild(partition)
                except Exception as exc:  # noqa: BLE001 - tried again with the next rollup of the partition
                    self.health.failed(exc)
                    self.health.stalled("rebuild", exc, [partition])
                    log.error("judge: rebuilding rollup partition %s raised %s; trying again with its next "
                              "rollup", partition, first_line(exc))
                else:
                    self.health.recovered("rebuild")
            try:
                raised += self._add_rollup(value, partition, offset)
                self.processed += 1
            except Exception as exc:  # noqa: BLE001 - the judge must outlive any record
                self.health.failed(exc)
                self.health.stalled("judge", exc, [partition])
                log.error("judge: a rollup of %s[%s] raised %s; skipped", self.settings.topic_rollups,
                          partition, first_line(exc))
            else:
                self.health.recovered("judge")
        return raised

    def tick(self) -> int:
        try:
            raised = len(self.judge.tick(int(time.time()) - int(self.settings.correlation_lateness)))
        except Exception as exc:  # noqa: BLE001 - the clock keeps ticking; the error shows in /health
            self.health.failed(exc)
            self.health.stalled("clock", exc)
            log.error("judge: the clock tick raised %s", first_line(exc))
            return 0
        self.health.recovered("clock")
        return raised

    def rebuild(self, partition: int) -> None:
        """Replay this partition's recent rollups in log order; alerts already raised stay raised once."""
        from kafka import TopicPartition

        from hub.runtime import clients

        started = time.monotonic()
        self._load_known_alerts()
        consumer = clients.consumer(self.settings.bootstrap, auto_offset_reset="earliest")
        replayed = 0
        try:
            tp = TopicPartition(self.settings.topic_rollups, partition)
            consumer.assign([tp])
            since = int((time.time() - self.settings.judge_horizon) * 1000)
            found = consumer.offsets_for_times({tp: since}).get(tp)
            end = consumer.end_offsets([tp])[tp]
            start = found.offset if found is not None else end
            for records in read_to_end(consumer, {tp: end}, {tp: start}, poll_ms=1000):
                for r in records:
                    try:
                        self._add_rollup(r.value, partition, r.offset)
                    except Exception as exc:  # noqa: BLE001 - one rollup never stops the rebuild
                        self.health.failed(exc)
                        log.error("judge: replaying %s[%d]@%d raised %s; skipped",
                                  self.settings.topic_rollups, partition, r.offset, first_line(exc))
                    replayed += 1
        finally:
            consumer.close()
        self._rebuilt.add(partition)
        log.info("judge: rebuilt rollup partition %d from %d rollups in %.2fs",
                 partition, replayed, time.monotonic() - started)

    def _load_known_alerts(self) -> None:
        """Learn the alerts on the alerts topic since the last call (all of them the first time)."""
        from hub.experiments.log import read_log

        topic = self.settings.topic_alerts
        for partition, offset, value in read_log(self.settings.bootstrap, topic, positions=self._alerts_read):
            record = safe_record(value, self.settings.max_record_bytes, self.settings.max_nesting_depth)
            if isinstance(record, str):
                self.skip(topic, record, partition, offset)
                continue
            if record.get("kind") != "alert":
                continue
            alert_id, status = record.get("alert_id"), record.get("status")
            if not isinstance(alert_id, str) or not isinstance(status, str):
                self.skip(topic, "an alert without a string alert_id and status", partition, offset)
                continue
            self.judge.known_alerts.add((alert_id, status))


def safe_record(value, max_bytes: int, max_depth: int) -> dict | str:
    """The JSON object in ``value``, or why it is not one (a string): never raises."""
    if not isinstance(value, (bytes, bytearray)) or not value:
        return "empty record"
    if len(value) > max_bytes:
        return f"too large: {len(value)} bytes > {max_bytes}"
    if too_deep(bytes(value), max_depth):
        return f"too deeply nested: > {max_depth} levels"
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(record, dict):
        return f"not a JSON object: a JSON {type(record).__name__}"
    return record
