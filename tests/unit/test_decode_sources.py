"""Every decoded row says which Kafka record (offset) and which event in it (index) it came from."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hub.abort.records import decode_alerts
from hub.otel.decode import METRIC_TABLES, decode_logs, decode_metrics, decode_spans
from hub.records.decode import RawMessage, decode_request_legs
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.shadow.records import ShadowPair, encode_pair, decode_pairs

UTC = timezone.utc
T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MAX = 1_000_000


def _leg(i: int) -> bytes:
    data = RequestLeg(correlation_id=f"c{i}", leg="primary", gateway="g", route="/r", method="GET", backend="b",
                      status=200, latency_ms=1.0, event_time=T)
    return encode_event(new_event(data, source="/g", id=str(uuid.UUID(int=i + 1))))


def _msg(offset: int, value: bytes | None, topic: str = "t") -> RawMessage:
    return RawMessage(topic, 0, offset, None, value, 0)


def _batch(*events: bytes) -> bytes:
    return b"[" + b",".join(events) + b"]"


def test_request_rows_name_their_record_and_event():
    bad = orjson.dumps({**orjson.loads(_leg(9)), "specversion": "2.0"})
    non_uuid = orjson.dumps({**orjson.loads(_leg(8)), "id": "not-a-uuid"})
    batch = decode_request_legs([
        _msg(10, _leg(1)),                                # single event, fast path
        _msg(11, _batch(_leg(2), _leg(3))),               # batch, fast path
        _msg(12, b"{"),                                   # not JSON: no row
        _msg(13, _batch(_leg(4), bad, _leg(5))),          # batch with a bad event in the middle
        _msg(14, non_uuid),                               # single event, slow path
        _msg(15, _batch(non_uuid, _leg(6))),              # batch, slow path
    ], MAX)
    assert batch.sources == [(10, -1), (11, 0), (11, 1), (13, 0), (13, 2), (14, -1), (15, 0), (15, 1)]
    assert len(batch.sources) == len(batch.rows)
    assert [row[4] for row in batch.rows] == ["c1", "c2", "c3", "c4", "c5", "c8", "c8", "c6"]


def _pair(i: int) -> bytes:
    return encode_pair(ShadowPair(correlation_id=f"c{i}", gateway="g", route="/r", method="GET",
                                  primary_backend="b", outcome="match", event_time=T), "/hub/pairing")


def test_pair_rows_name_their_record_and_event():
    batch = decode_pairs([_msg(3, _pair(1)), _msg(4, b"nope"), _msg(5, _batch(b"{}", _pair(2), _pair(3)))], MAX)
    assert batch.sources == [(3, -1), (5, 1), (5, 2)]
    assert [row[5] for row in batch.rows] == ["c1", "c2", "c3"]


def test_alert_rows_name_their_record():
    alert = orjson.dumps({"kind": "alert", "experiment_id": "e", "time": "2024-05-01T12:00:00+00:00"})
    batch = decode_alerts([_msg(7, alert), _msg(8, b"{}"), _msg(9, alert)], MAX)
    assert batch.sources == [(7, -1), (9, -1)]


def _spans(n: int) -> bytes:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(n):
        s = spans.add()
        s.name = f"s{i}"
        s.start_time_unix_nano = s.end_time_unix_nano = 1_714_564_800_000_000_000
    return req.SerializeToString()


def test_span_and_log_rows_name_their_record_and_position():
    batch = decode_spans([_msg(20, _spans(2)), _msg(21, b"\xff"), _msg(22, _spans(1))], "otlp_proto", MAX)
    assert batch.sources == [(20, 0), (20, 1), (22, 0)]
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1714564800000000000", "body": {"stringValue": "a"}},
        {"timeUnixNano": "1714564800000000000", "body": {"stringValue": "b"}}]}]}]}
    batch = decode_logs([_msg(30, orjson.dumps(logs)), _msg(31, orjson.dumps(logs))], "auto", MAX)
    assert batch.sources == [(30, 0), (30, 1), (31, 0), (31, 1)]


def test_metric_rows_have_one_source_list_per_table():
    req = ExportMetricsServiceRequest()
    metrics = req.resource_metrics.add().scope_metrics.add().metrics
    g = metrics.add()
    g.name = "g"
    for v in (1.0, 2.0):
        g.gauge.data_points.add(as_double=v, time_unix_nano=1_714_564_800_000_000_000)
    s = metrics.add()
    s.name = "s"
    s.sum.data_points.add(as_int=3, time_unix_nano=1_714_564_800_000_000_000)
    value = req.SerializeToString()
    batch = decode_metrics([_msg(40, value), _msg(41, b""), _msg(42, value)], "otlp_proto", MAX)
    assert batch.sources["gauge"] == [(40, 0), (40, 1), (42, 0), (42, 1)]
    assert batch.sources["sum"] == [(40, 0), (42, 0)]
    tables = batch.table_batch()
    assert [len(rows) for _, _, rows in tables.tables] == [len(src) for src in tables.sources]
    assert [table for table, _, _ in tables.tables] == [t for t, _ in METRIC_TABLES.values()]
    assert tables.rows == [] and len(tables.invalid) == 1
