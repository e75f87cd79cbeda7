"""The judge inside a worker: fed by the rollup agent, rebuilt from the log when partitions arrive."""

from __future__ import annotations

import json
import logging
import time

from hub.abort.actions import AlertActions
from hub.abort.judge import Judge
from hub.experiments.registry import ExperimentRegistry
from hub.settings import Settings

log = logging.getLogger(__name__)


class RollupPublisher:
    """Sends a stored chunk's rollups to ``hub.rollups`` before the chunk is acknowledged."""

    def __init__(self, settings: Settings, topic: str | None = None):
        self.settings = settings
        self.topic = topic or settings.topic_rollups
        self._producer = None

    def publish(self, records: list[tuple[bytes, bytes]]) -> None:
        if not records:
            return
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all", retries=5,
                                           linger_ms=0)
        futures = [self._producer.send(self.topic, key=k, value=v) for k, v in records]
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)


class JudgeRuntime:
    def __init__(self, settings: Settings, registry: ExperimentRegistry, actions: AlertActions | None = None):
        self.settings = settings
        self.registry = registry
        self.actions = actions or AlertActions(settings)
        self.judge = Judge(self._conditions, self.actions, horizon=settings.judge_horizon,
                           idle=settings.judge_idle)
        self._rebuilt: set[int] = set()
        self.processed = 0

    def _conditions(self, experiment_id: str):
        state = self.registry.states.get(experiment_id)
        if state is None:
            # The rollup may overtake the registry by a moment; wait briefly for the log.
            self.registry.wait_until_known(time.time(), max_wait=5.0)
            state = self.registry.states.get(experiment_id)
        return None if state is None else list(state.definition.abort_conditions)

    def forget(self, partitions) -> None:
        for p in partitions:
            self._rebuilt.discard(p)

    def process(self, items: list[tuple[int, bytes]]) -> int:
        """Rollups from the agent as (partition, value); returns alerts raised."""
        raised = 0
        for partition, value in items:
            if partition not in self._rebuilt:
                self.rebuild(partition)
            raised += len(self.judge.add_rollup(value))
            self.processed += 1
        return raised

    def tick(self) -> int:
        return len(self.judge.tick(int(time.time()) - int(self.settings.correlation_lateness)))

    def rebuild(self, partition: int) -> None:
        """Replay this partition's recent rollups in log order; alerts already raised stay raised once."""
        from kafka import KafkaConsumer, TopicPartition

        started = time.monotonic()
        self._load_known_alerts()
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest")
        replayed = 0
        try:
            tp = TopicPartition(self.settings.topic_rollups, partition)
            consumer.assign([tp])
            since = int((time.time() - self.settings.judge_horizon) * 1000)
            found = consumer.offsets_for_times({tp: since}).get(tp)
            end = consumer.end_offsets([tp])[tp]
            start = found.offset if found is not None else end
            consumer.seek(tp, start)
            while consumer.position(tp) < end:
                for records in consumer.poll(timeout_ms=1000).values():
                    for r in records:
                        if r.offset < end:
                            self.judge.add_rollup(r.value)
                            replayed += 1
        finally:
            consumer.close()
        self._rebuilt.add(partition)
        log.info("judge: rebuilt rollup partition %d from %d rollups in %.2fs",
                 partition, replayed, time.monotonic() - started)

    def _load_known_alerts(self) -> None:
        from hub.experiments.log import read_log

        for _, _, value in read_log(self.settings.bootstrap, self.settings.topic_alerts):
            try:
                record = json.loads(value)
            except ValueError:
                continue
            if record.get("kind") == "alert":
                self.judge.known_alerts.add((record["alert_id"], record["status"]))
