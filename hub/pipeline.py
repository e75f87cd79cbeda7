"""What the worker runs: one exactly-once sink per input topic, wired to the store, Kafka and the DLQ."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.otel.decode import LOG_COLUMNS, TRACE_COLUMNS, decode_logs, decode_metrics, decode_spans
from hub.records.decode import REQUEST_COLUMNS, decode_request_legs
from hub.runtime.fetch import KafkaRangeFetcher
from hub.settings import Settings
from hub.storage.client import Store
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.sink import ExactlyOnceSink, SinkSpec


@dataclass
class MultiTableBatch:
    """A decoded batch that fills several tables (OTLP metrics: one table per metric type)."""

    tables: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    rows: list = field(default_factory=list)


def _metrics(messages, encoding: str, max_bytes: int) -> MultiTableBatch:
    batch = decode_metrics(messages, encoding, max_bytes)
    return MultiTableBatch(tables=batch.tables(), invalid=batch.invalid)


def sink_specs(settings: Settings) -> list[SinkSpec]:
    """Every topic the worker stores, with its decoder and table."""
    max_bytes = settings.max_record_bytes
    encoding = settings.otlp_encoding
    return [
        SinkSpec(name="requests", topic=settings.topic_requests, table="requests", columns=REQUEST_COLUMNS,
                 decode=lambda messages: decode_request_legs(messages, max_bytes)),
        SinkSpec(name="spans", topic=settings.topic_spans, table="otel_traces", columns=TRACE_COLUMNS,
                 decode=lambda messages: decode_spans(messages, encoding, max_bytes)),
        SinkSpec(name="logs", topic=settings.topic_logs, table="otel_logs", columns=LOG_COLUMNS,
                 decode=lambda messages: decode_logs(messages, encoding, max_bytes)),
        SinkSpec(name="metrics", topic=settings.topic_metrics, table="", columns=(),
                 decode=lambda messages: _metrics(messages, encoding, max_bytes)),
    ]


def build_sinks(settings: Settings, store: Store) -> list[ExactlyOnceSink]:
    dead_letters = DeadLetterPublisher(store, settings.bootstrap, settings.topic_dlq)
    return [ExactlyOnceSink(store, spec, dead_letters, KafkaRangeFetcher(settings.bootstrap))
            for spec in sink_specs(settings)]


def topics_to_create(settings: Settings) -> dict[str, int]:
    topics = {spec.topic: settings.partitions for spec in sink_specs(settings)}
    topics[settings.topic_dlq] = settings.partitions
    return topics
