"""Rebuilds every ClickHouse projection from the Kafka log (``hub replay``).

Everything in the hub's database is a projection of Kafka topics: request legs, OpenTelemetry
data, dead letters, the experiment events and the sink's ledger. Replay drops the database,
applies the migrations to fresh tables (fresh deduplication logs too), reads every topic from
its first offset and stores it through the same exactly-once sinks the worker uses, with the
whole experiment log known up front, so records are placed on the same experiments and phases
as they were live. Dead letters are stored again but not published to the dead-letter topic again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable

from hub.errors import UserError
from hub.experiments.registry import ExperimentRegistry
from hub.pipeline import redactor_for, sink_specs
from hub.records.decode import RawMessage
from hub.runtime.fetch import KafkaRangeFetcher
from hub.settings import Settings
from hub.storage.client import open_store
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.migrations import migrate
from hub.storage.sink import ExactlyOnceSink

Progress = Callable[[str], None]


def replay(settings: Settings, progress: Progress = print, batch: int = 20_000) -> dict[str, int]:
    """Drop and rebuild the database from Kafka; returns rows stored per sink."""
    from hub.runtime.stack import Stack

    stack = Stack(settings)
    if stack.worker_pid() is not None:
        raise UserError("the hub's worker is running; stop it first (`hub down`), replay, then `hub up`")
    store = open_store(settings, create_database=False)
    try:
        progress(f"dropping database {settings.database} and applying the migrations to fresh tables")
        store.command(f"DROP DATABASE IF EXISTS {settings.database} SYNC")
        store.command(f"CREATE DATABASE {settings.database}")
        migrate(store, settings)
        registry = ExperimentRegistry(settings.bootstrap, settings.topic_experiments).load_all()
        progress(f"experiment log: {len(registry.states)} experiment(s)")
        dead_letters = DeadLetterPublisher(store, settings.bootstrap, settings.topic_dlq, publish=False,
                                           redactor=redactor_for(settings))
        stored: dict[str, int] = {}
        for spec in sink_specs(settings, registry):
            sink = ExactlyOnceSink(store, spec, dead_letters, KafkaRangeFetcher(settings.bootstrap))
            count = _replay_topic(settings.bootstrap, spec.topic, sink, batch)
            stored[spec.name] = sink.stats.stored
            progress(f"  {spec.topic}: {count:,} records read, {sink.stats.stored:,} rows stored, "
                     f"{sink.stats.invalid:,} dead letters")
        return stored
    finally:
        store.close()


def _replay_topic(bootstrap: str, topic: str, sink: ExactlyOnceSink, batch: int) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=batch)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return 0
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        count = 0
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            messages: list[RawMessage] = []
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for r in records:
                    if r.offset < end[tp]:
                        messages.append(RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp))
            by_partition = defaultdict(list)
            for m in messages:
                by_partition[m.partition].append(m)
            for chunk in by_partition.values():
                chunk.sort(key=lambda m: m.offset)
            if messages:
                sink.write([m for chunk in by_partition.values() for m in chunk])
                count += len(messages)
            for tp in list(pending):
                if consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return count
    finally:
        consumer.close()
