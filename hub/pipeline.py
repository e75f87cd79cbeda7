"""What the worker runs: one exactly-once sink per input topic, wired to the store, Kafka and the DLQ."""

from __future__ import annotations

from hub.records.decode import REQUEST_COLUMNS, decode_request_legs
from hub.runtime.fetch import KafkaRangeFetcher
from hub.settings import Settings
from hub.storage.client import Store
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.sink import ExactlyOnceSink, SinkSpec


def sink_specs(settings: Settings) -> list[SinkSpec]:
    """Every topic the worker stores, with its decoder and table."""
    max_bytes = settings.max_record_bytes
    return [
        SinkSpec(name="requests", topic=settings.topic_requests, table="requests", columns=REQUEST_COLUMNS,
                 decode=lambda messages: decode_request_legs(messages, max_bytes)),
    ]


def build_sinks(settings: Settings, store: Store) -> list[ExactlyOnceSink]:
    dead_letters = DeadLetterPublisher(store, settings.bootstrap, settings.topic_dlq)
    return [ExactlyOnceSink(store, spec, dead_letters, KafkaRangeFetcher(settings.bootstrap))
            for spec in sink_specs(settings)]


def topics_to_create(settings: Settings) -> dict[str, int]:
    topics = {spec.topic: settings.partitions for spec in sink_specs(settings)}
    topics[settings.topic_dlq] = settings.partitions
    return topics
