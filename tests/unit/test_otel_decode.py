"""Bad OTLP input: each unusable Kafka record becomes an InvalidRecord, its neighbours still decode."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.otel.decode import (
    TRACE_COLUMNS,
    any_value_string,
    decode_logs,
    decode_metrics,
    decode_spans,
    format_double,
)
from hub.records.decode import RawMessage

MAX = 64 * 1024


def _span_request_bytes(name: str = "ok") -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span(name).end()
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def _msg(offset: int, value: bytes | None) -> RawMessage:
    return RawMessage("otlp_spans", 3, offset, None, value, 0)


GOOD = _span_request_bytes()


@pytest.mark.parametrize(("value", "encoding", "kind"), [
    (b"", "otlp_proto", "empty value"),
    (None, "auto", "empty value"),
    (b"\xff\xfe\xfd garbage \x00\x01", "otlp_proto", "not protobuf"),
    (GOOD[: len(GOOD) // 2], "otlp_proto", "not protobuf"),       # truncated mid-message
    (b"\x08\x96\x01", "otlp_proto", "not protobuf"),               # valid protobuf, not an OTLP request
    (b'{"resourceSpans": [}', "otlp_json", "not OTLP JSON"),       # broken JSON
    (b'{"hello": "world"}', "otlp_json", "not OTLP JSON"),         # JSON, not OTLP
    (b"[1, 2, 3]", "auto", "not protobuf"),                       # auto: only "{" means JSON
    (b"[1, 2, 3]", "otlp_json", "not OTLP JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex"}]}]}]}', "otlp_json", "not OTLP JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}', "auto",
     "not OTLP JSON"),
    (b'{"resourceSpans": "nope"}', "otlp_json", "not OTLP JSON"),
    (GOOD, "otlp_json", "not OTLP JSON"),                           # protobuf sent where JSON is configured
    (b"x" * (MAX + 1), "auto", "oversized"),
])
def test_bad_record_is_invalid_and_neighbours_decode(value, encoding, kind):
    good = GOOD if encoding != "otlp_json" else (
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},'
        b'"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",'
        b'"name":"ok","kind":2,"startTimeUnixNano":"1714564800000001000","endTimeUnixNano":"1714564800000003000"}]}]}]}')
    batch = decode_spans([_msg(1, good), _msg(2, value), _msg(3, good)], encoding, MAX)
    assert [r[TRACE_COLUMNS.index("SpanName")] for r in batch.rows] == ["ok", "ok"]
    assert len(batch.invalid) == 1
    bad = batch.invalid[0]
    assert bad.reason.startswith(kind + (":" if kind != "empty value" else "")), bad.reason
    assert (bad.topic, bad.partition, bad.offset, bad.index) == ("otlp_spans", 3, 2, -1)


def test_json_span_fields():
    value = (b'{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"s"},"spans":[{'
             b'"traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"b7ad6b7169203331","parentSpanId":"",'
             b'"name":"n","kind":3,"startTimeUnixNano":1714564800000001000,"endTimeUnixNano":"1714564800000004000",'
             b'"status":{"code":2,"message":"boom"},'
             b'"attributes":[{"key":"n","value":{"intValue":"9007199254740993"}},'
             b'{"key":"d","value":{"doubleValue":"NaN"}}]}]}]}]}')
    batch = decode_spans([_msg(0, value)], "otlp_json", MAX)
    assert batch.invalid == []
    row = dict(zip(TRACE_COLUMNS, batch.rows[0]))
    assert row["TraceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert row["ParentSpanId"] == ""
    assert (row["SpanKind"], row["StatusCode"], row["StatusMessage"]) == ("Client", "Error", "boom")
    assert (row["Timestamp"], row["Duration"]) == (1714564800000001000, 3000)
    assert row["SpanAttributes"] == {"n": "9007199254740993", "d": "NaN"}
    assert (row["ServiceName"], row["ScopeName"], row["ExperimentId"]) == ("", "s", "")


def test_other_signals_report_bad_records_too():
    logs = decode_logs([RawMessage("otlp_logs", 0, 5, None, b"\x00garbage", 0)], "auto", MAX)
    assert logs.rows == [] and logs.invalid[0].reason.startswith("not protobuf:")
    metrics = decode_metrics([RawMessage("otlp_metrics", 0, 6, None, b'{"resourceLogs": []}', 0)], "auto", MAX)
    assert metrics.row_count == 0 and metrics.invalid[0].reason.startswith("not OTLP JSON:")
    # an empty but well-formed request is not an error: it just has no data points
    empty = ExportMetricsServiceRequest()
    empty.resource_metrics.add()
    ok = decode_metrics([RawMessage("otlp_metrics", 0, 7, None, empty.SerializeToString(), 0)], "otlp_proto", MAX)
    assert ok.invalid == [] and ok.row_count == 0


def test_unknown_encoding_is_a_programming_error():
    with pytest.raises(ValueError):
        decode_spans([_msg(0, GOOD)], "jaeger_proto", MAX)


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.25, "0.25"), (-2.5, "-2.5"), (1e21, "1e+21"), (1e-7, "1e-7"), (0.00001, "0.00001"),
    (123456789012345680000.0, "123456789012345680000"), (0.1 + 0.2, "0.30000000000000004"),
    (9007199254740994.0, "9007199254740994"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (-0.0, "-0"),
])
def test_doubles_print_like_the_collector(value, text):
    assert format_double(value) == text


def test_any_value_strings():
    arr = AnyValue(array_value=ArrayValue(values=[
        AnyValue(string_value="a&b"), AnyValue(int_value=3), AnyValue(double_value=2.0),
        AnyValue(bool_value=False), AnyValue(), AnyValue(bytes_value=b"\x01\x02")]))
    assert any_value_string(arr) == '["a\\u0026b",3,2,false,null,"AQI="]'
    kv = AnyValue(kvlist_value=KeyValueList(values=[
        KeyValue(key="z", value=AnyValue(int_value=1)), KeyValue(key="a", value=AnyValue(string_value="x"))]))
    assert any_value_string(kv) == '{"a":"x","z":1}'
    assert any_value_string(AnyValue(bytes_value=b"hi")) == "aGk="
    assert any_value_string(AnyValue()) == ""
