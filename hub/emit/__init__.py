"""``hub.emit``: the Python emitter SDK. Nothing here makes the caller's request path fail or wait.

- ``EventEmitter``: buffers CloudEvents (request legs, or any structured-mode event) in memory
  and sends them to Kafka from a background thread, packed per partition into CloudEvents
  batches. ``emit``/``emit_leg`` return at once; what cannot be buffered or sent is counted as
  dropped (``stats()``) and reported in a rate-limited warning.
- ``KafkaSpanExporter``: an OpenTelemetry ``SpanExporter`` writing OTLP trace requests to the
  ``otlp_spans`` topic exactly as the Collector's Kafka exporter does (``otlp_proto`` or
  ``otlp_json``); use it behind a ``BatchSpanProcessor``.
- ``RequestLegMiddleware``: ASGI middleware emitting one request-leg record per HTTP request.

Example::

    from datetime import datetime, timezone
    from hub.emit import EventEmitter, KafkaSpanExporter, RequestLeg, RequestLegMiddleware

    emitter = EventEmitter("127.0.0.1:19092")            # returns at once; connects in the background
    emitter.emit_leg(RequestLeg(
        correlation_id="4f1c...", leg="primary", gateway="edge-eu-1", route="/patients/{id}",
        method="GET", backend="patients", status=200, latency_ms=18.4,
        event_time=datetime.now(timezone.utc)))
    app = RequestLegMiddleware(app, emitter, gateway="edge-eu-1", backend="patients")

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(KafkaSpanExporter("127.0.0.1:19092")))

    emitter.close(timeout=5)                             # at shutdown: send what is buffered
    provider.shutdown()

See ``hub/emit/README.md`` for the guarantees and what counts as dropped.
"""

from hub.emit._asgi import (
    HEADER_CORRELATION_ID,
    HEADER_EXPERIMENT_ID,
    HEADER_EXPERIMENT_PHASE,
    RequestLegMiddleware,
    parse_baggage,
)
from hub.emit._emitter import EventEmitter, partition_for
from hub.emit._otel import KafkaSpanExporter, otlp_json
from hub.records.request_leg import RequestLeg, new_event

__all__ = [
    "EventEmitter",
    "KafkaSpanExporter",
    "RequestLegMiddleware",
    "RequestLeg",
    "new_event",
    "partition_for",
    "otlp_json",
    "parse_baggage",
    "HEADER_CORRELATION_ID",
    "HEADER_EXPERIMENT_ID",
    "HEADER_EXPERIMENT_PHASE",
]
