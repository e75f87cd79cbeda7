"""OTLP made by the OpenTelemetry SDK's own encoders, decoded and stored in the real engine.

Spans, metrics and logs come from real SDK providers with in-memory exporters/readers, encoded with
``opentelemetry.exporter.otlp.proto.common`` exactly as an OTLP exporter does; the Kafka values are
the serialized request (``otlp_proto``) or its OTLP/JSON form (``otlp_json``: camelCase names,
hex trace/span ids, integer enums, 64-bit integers as strings), as the Collector's Kafka exporter
writes them. Rows go into the migrated ``otel_*`` tables and are checked with SQL.
"""

from __future__ import annotations

import time

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry._logs import SeverityNumber

from hub.emit._otel import otlp_json
from hub.names import ATTR_EXPERIMENT_ID, ATTR_EXPERIMENT_PHASE
from hub.otel.decode import (
    LOG_COLUMNS,
    METRIC_TABLES,
    TRACE_COLUMNS,
    decode_logs,
    decode_metrics,
    decode_spans,
)
from hub.records.decode import RawMessage

pytestmark = pytest.mark.clickhouse

# recent, whole second (the tables have a TTL; rows older than it are dropped as they land)
T0 = time.time_ns() // 1_000_000_000 * 1_000_000_000 - 3600 * 1_000_000_000
MAX_BYTES = 4 * 1024 * 1024
RESOURCE = {"service.name": "checkout", "deployment.environment": "gameday", ATTR_EXPERIMENT_ID: "exp-res"}


def kafka_values(request, encoding: str, topic: str) -> list[RawMessage]:
    value = request.SerializeToString() if encoding == "otlp_proto" else otlp_json(request)
    return [RawMessage(topic, 0, 7, None, value, T0 // 1_000_000)]


# ---- producing OTLP with the SDK -----------------------------------------------------------------


def make_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("hub.test.tracer", "1.2.3")
    root = tracer.start_span(
        "GET /cart", kind=trace_api.SpanKind.SERVER, start_time=T0,
        attributes={
            "http.status_code": 200, "ratio": 0.25, "whole": 2.0, "cached": True, "route": "/cart",
            "tags": ["a", "b<c"], "codes": [1, 2], "weights": [0.5, 1.0], "flags": [True, False],
            ATTR_EXPERIMENT_ID: "exp-42", ATTR_EXPERIMENT_PHASE: "injection",
        },
    )
    root.add_event("retry", {"attempt": 2}, timestamp=T0 + 1_000)
    ctx = trace_api.set_span_in_context(root)
    child = tracer.start_span("SELECT orders", context=ctx, kind=trace_api.SpanKind.CLIENT, start_time=T0 + 2_000,
                              links=[trace_api.Link(root.get_span_context(), {"why": "follows"})])
    child.set_status(trace_api.Status(trace_api.StatusCode.ERROR, "timeout"))
    child.end(end_time=T0 + 2_000 + 250_000_000)
    root.end(end_time=T0 + 1_500_000_000)
    plain = tracer.start_span("background", start_time=T0 + 10)
    plain.end(end_time=T0 + 20)
    provider.shutdown()
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    return encode_spans(spans), root.get_span_context(), child.get_span_context()


def make_metrics():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create(RESOURCE))
    meter = provider.get_meter("hub.test.meter", "0.1")
    labels = {"route": "/cart", ATTR_EXPERIMENT_ID: "exp-42", ATTR_EXPERIMENT_PHASE: "baseline"}
    requests = meter.create_counter("requests", unit="1", description="requests served")
    requests.add(3, labels)
    requests.add(2, labels)
    in_flight = meter.create_up_down_counter("in_flight")
    in_flight.add(5, {"route": "/cart"})
    in_flight.add(-2, {"route": "/cart"})
    latency = meter.create_histogram("latency", unit="ms", explicit_bucket_boundaries_advisory=[10.0, 100.0])
    for v in (5.0, 50.0, 500.0, 7.5):
        latency.record(v, labels)
    depth = meter.create_gauge("queue.depth")
    depth.set(7.5, {"queue": "orders"})
    data = reader.get_metrics_data()
    provider.shutdown()
    return encode_metrics(data)


def make_logs(span_context):
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("hub.test.logger", "9.9")
    logger.emit(timestamp=T0, observed_timestamp=T0 + 5, body="connection refused",
                severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                attributes={"db": "orders", ATTR_EXPERIMENT_PHASE: "injection"},
                context=trace_api.set_span_in_context(trace_api.NonRecordingSpan(span_context)))
    logger.emit(timestamp=T0 + 1_000, body={"msg": "pool resized", "size": 8},
                severity_number=SeverityNumber.INFO, severity_text="INFO",
                attributes={ATTR_EXPERIMENT_ID: "exp-7"}, event_name="pool.resize")
    logger.emit(observed_timestamp=T0 + 2_000, body=42, severity_number=SeverityNumber.WARN)
    provider.shutdown()
    records = exporter.get_finished_logs()
    assert len(records) == 3
    return encode_logs(records)


ENCODINGS = ["otlp_proto", "otlp_json"]


# ---- traces ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_spans_store_and_query(store, encoding):
    request, root_ctx, child_ctx = make_spans()
    batch = decode_spans(kafka_values(request, encoding, "otlp_spans"), encoding, MAX_BYTES)
    assert batch.invalid == []
    assert len(batch.rows) == 3
    store.insert(f"{store.database}.otel_traces", batch.rows, TRACE_COLUMNS)
    db = store.database

    rows = store.query(
        f"SELECT SpanName, SpanKind, ServiceName, Duration, StatusCode, StatusMessage, ScopeName, ScopeVersion, "
        f"ExperimentId, ExperimentPhase, toUnixTimestamp64Nano(Timestamp) "
        f"FROM {db}.otel_traces ORDER BY Timestamp").result_rows
    assert rows == [
        ("GET /cart", "Server", "checkout", 1_500_000_000, "Unset", "", "hub.test.tracer", "1.2.3",
         "exp-42", "injection", T0),
        ("background", "Internal", "checkout", 10, "Unset", "", "hub.test.tracer", "1.2.3", "exp-res", "", T0 + 10),
        ("SELECT orders", "Client", "checkout", 250_000_000, "Error", "timeout", "hub.test.tracer", "1.2.3",
         "exp-res", "", T0 + 2_000),
    ]

    attrs = store.query(
        f"SELECT SpanAttributes['http.status_code'], SpanAttributes['ratio'], SpanAttributes['whole'], "
        f"SpanAttributes['cached'], SpanAttributes['route'], SpanAttributes['tags'], SpanAttributes['codes'], "
        f"SpanAttributes['weights'], SpanAttributes['flags'], ResourceAttributes['deployment.environment'] "
        f"FROM {db}.otel_traces WHERE SpanName = 'GET /cart'").result_rows
    assert attrs == [("200", "0.25", "2", "true", "/cart", '["a","b\\u003cc"]', "[1,2]", "[0.5,1]",
                      "[true,false]", "gameday")]
    # typed queries on the string map work the way they do on the exporter's tables
    assert store.scalar(f"SELECT toUInt16(SpanAttributes['http.status_code']) + 1 FROM {db}.otel_traces "
                        f"WHERE SpanName = 'GET /cart'") == 201
    assert store.scalar(f"SELECT JSONExtract(SpanAttributes['tags'], 'Array(String)') FROM {db}.otel_traces "
                        f"WHERE SpanName = 'GET /cart'") == ["a", "b<c"]

    root_trace = format(root_ctx.trace_id, "032x")
    ids = store.query(
        f"SELECT TraceId, SpanId, ParentSpanId, Links.TraceId, Links.SpanId, Links.Attributes "
        f"FROM {db}.otel_traces WHERE SpanName = 'SELECT orders'").result_rows
    assert ids == [(root_trace, format(child_ctx.span_id, "016x"), format(root_ctx.span_id, "016x"),
                    [root_trace], [format(root_ctx.span_id, "016x")], [{"why": "follows"}])]
    events = store.query(
        f"SELECT Events.Name, arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Attributes "
        f"FROM {db}.otel_traces WHERE SpanName = 'GET /cart'").result_rows
    assert events == [(["retry"], [T0 + 1_000], [{"attempt": "2"}])]
    # the exporter's trace-id lookup table is filled by its materialized view
    assert store.scalar(f"SELECT count() FROM {db}.otel_traces_trace_id_ts WHERE TraceId = '{root_trace}'") >= 1
    # per-experiment filtering
    assert store.scalar(f"SELECT count() FROM {db}.otel_traces WHERE ExperimentId = 'exp-res'") == 2


def test_span_rows_are_the_same_from_both_encodings():
    request, _, _ = make_spans()
    proto = decode_spans(kafka_values(request, "otlp_proto", "otlp_spans"), "otlp_proto", MAX_BYTES)
    json_ = decode_spans(kafka_values(request, "otlp_json", "otlp_spans"), "auto", MAX_BYTES)
    assert proto.rows == json_.rows and proto.invalid == json_.invalid == []


# ---- metrics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_metrics_store_and_query(store, encoding):
    request = make_metrics()
    batch = decode_metrics(kafka_values(request, encoding, "otlp_metrics"), encoding, MAX_BYTES)
    assert batch.invalid == []
    assert (len(batch.gauge), len(batch.sum), len(batch.histogram)) == (1, 2, 1)
    for table, columns, rows in batch.tables():
        store.insert(f"{store.database}.{table}", rows, columns)
    db = store.database

    assert store.query(
        f"SELECT MetricName, Value, Attributes['queue'], ServiceName, ScopeName, ScopeVersion "
        f"FROM {db}.otel_metrics_gauge").result_rows == [("queue.depth", 7.5, "orders", "checkout",
                                                          "hub.test.meter", "0.1")]
    sums = store.query(
        f"SELECT MetricName, Value, IsMonotonic, AggregationTemporality, MetricUnit, MetricDescription, "
        f"ExperimentId, ExperimentPhase FROM {db}.otel_metrics_sum ORDER BY MetricName").result_rows
    assert sums == [
        ("in_flight", 3.0, False, 2, "", "", "exp-res", ""),
        ("requests", 5.0, True, 2, "1", "requests served", "exp-42", "baseline"),
    ]
    hist = store.query(
        f"SELECT MetricName, MetricUnit, Count, Sum, Min, Max, BucketCounts, ExplicitBounds, "
        f"AggregationTemporality, ExperimentId FROM {db}.otel_metrics_histogram").result_rows
    assert hist == [("latency", "ms", 4, 562.5, 5.0, 500.0, [2, 1, 1], [10.0, 100.0], 2, "exp-42")]
    # timestamps came through as nanoseconds
    assert store.scalar(f"SELECT toUnixTimestamp64Nano(TimeUnix) > toUnixTimestamp64Nano(StartTimeUnix) "
                        f"FROM {db}.otel_metrics_histogram") == 1
    assert set(METRIC_TABLES) == {"gauge", "sum", "histogram", "exponential_histogram", "summary"}


def test_metric_rows_are_the_same_from_both_encodings():
    request = make_metrics()
    proto = decode_metrics(kafka_values(request, "otlp_proto", "otlp_metrics"), "otlp_proto", MAX_BYTES)
    json_ = decode_metrics(kafka_values(request, "otlp_json", "otlp_metrics"), "otlp_json", MAX_BYTES)
    for kind in METRIC_TABLES:
        assert getattr(proto, kind) == getattr(json_, kind), kind


# ---- logs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_logs_store_and_query(store, encoding):
    _, root_ctx, _ = make_spans()
    request = make_logs(root_ctx)
    batch = decode_logs(kafka_values(request, encoding, "otlp_logs"), encoding, MAX_BYTES)
    assert batch.invalid == []
    store.insert(f"{store.database}.otel_logs", batch.rows, LOG_COLUMNS)
    db = store.database
    rows = store.query(
        f"SELECT toUnixTimestamp64Nano(Timestamp), Body, SeverityText, SeverityNumber, ServiceName, TraceId, "
        f"SpanId, TraceFlags, ScopeName, ScopeVersion, EventName, LogAttributes, ExperimentId, ExperimentPhase "
        f"FROM {db}.otel_logs ORDER BY Timestamp").result_rows
    assert rows == [
        (T0, "connection refused", "ERROR", 17, "checkout", format(root_ctx.trace_id, "032x"),
         format(root_ctx.span_id, "016x"), int(root_ctx.trace_flags), "hub.test.logger", "9.9", "",
         {"db": "orders", ATTR_EXPERIMENT_PHASE: "injection"}, "exp-res", "injection"),
        (T0 + 1_000, '{"msg":"pool resized","size":8}', "INFO", 9, "checkout", "", "", 0,
         "hub.test.logger", "9.9", "pool.resize", {ATTR_EXPERIMENT_ID: "exp-7"}, "exp-7", ""),
        (T0 + 2_000, "42", "", 13, "checkout", "", "", 0, "hub.test.logger", "9.9", "", {}, "exp-res", ""),
    ]
    assert store.scalar(f"SELECT count() FROM {db}.otel_logs WHERE hasToken(Body, 'refused')") == 1
