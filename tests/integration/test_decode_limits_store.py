"""What the decoders accept at the edges of their limits, the real store takes: extreme but valid
timestamps, counts, NaN and infinities go in and come back as they were decoded."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hub.abort.records import ALERT_COLUMNS, decode_alerts
from hub.otel.decode import LOG_COLUMNS, METRIC_TABLES, TRACE_COLUMNS, decode_logs, decode_metrics, decode_spans
from hub.records.decode import REQUEST_COLUMNS, Limits, RawMessage, decode_request_legs
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.shadow.records import PAIR_COLUMNS, ShadowPair, decode_pairs, encode_pair
from tests.fixtures_clickhouse import migrated_copy

pytestmark = pytest.mark.clickhouse

UTC = timezone.utc
NOW = datetime.now(UTC).replace(microsecond=0)
LIMITS = Limits(1_000_000)
T = int(NOW.timestamp()) * 10**9
I64 = 2**63 - 1
U64 = 2**64 - 1


def msgs(*values: bytes) -> list[RawMessage]:
    return [RawMessage("t", 0, i, None, v, 0) for i, v in enumerate(values)]


def test_alerts_at_the_edges_are_stored_as_decoded(store):
    base = {"kind": "alert", "experiment_id": "e", "alert_id": "a", "time": "2000-01-01T00:00:00+00:00",
            "samples": U64, "status_code": 65535, "attempts": 255, "ok": False,
            "window_start": "2000-01-01T00:00:00Z", "window_end": (NOW + timedelta(hours=23)).isoformat()}
    value = json.dumps({**base, "threshold": math.nan, "observed": math.inf}).encode()
    batch = decode_alerts(msgs(value, json.dumps({**base, "kind": "action", "observed": None}).encode()), 10**6, LIMITS)
    assert batch.invalid == [] and len(batch.rows) == 2
    store.insert(f"{store.database}.alerts", batch.rows, ALERT_COLUMNS)
    rows = store.query(f"SELECT kind, threshold, observed, samples, status_code, attempts, time "
                       f"FROM {store.database}.alerts ORDER BY kind DESC").result_rows
    (kind, threshold, observed, samples, code, attempts, time), second = rows
    assert (kind, observed, samples, code, attempts) == ("alert", math.inf, U64, 65535, 255)
    assert math.isnan(threshold) and time.year == 2000 and second[0] == "action" and second[2] is None


def test_request_legs_at_the_edges_are_stored_as_decoded(hub_settings):
    store = migrated_copy(hub_settings.with_overrides(ttl_days=0))  # a row of 2000 outlives no TTL
    def leg(i, **changes):
        fields = dict(correlation_id=f"c{i}", leg="primary", gateway="g", route="/r", method="GET", backend="b",
                      status=599, latency_ms=1e30, event_time=NOW + timedelta(hours=23), request_bytes=4294967295)
        fields.update(changes)
        return encode_event(new_event(RequestLeg(**fields), source="/g"))

    batch = decode_request_legs(msgs(leg(0), leg(1, event_time=datetime(2000, 1, 1, tzinfo=UTC), latency_ms=0.0)),
                                10**6, LIMITS)
    assert batch.invalid == [] and len(batch.rows) == 2
    store.insert(f"{store.database}.requests", batch.rows, REQUEST_COLUMNS)
    rows = store.query(f"SELECT request_bytes, status, latency_ms, toYear(event_time) FROM {store.database}.requests "
                       "ORDER BY event_time").result_rows
    assert rows == [(4294967295, 599, 0.0, 2000), (4294967295, 599, pytest.approx(1e30, rel=1e-6),
                                                   (NOW + timedelta(hours=23)).year)]


def test_spans_and_data_points_at_the_edges_are_stored_as_decoded(store):
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    s = ss.spans.add(name="edge", start_time_unix_nano=T, end_time_unix_nano=U64, kind=99)
    s.trace_id, s.span_id = bytes([7] * 16), bytes([7] * 8)
    s.events.add(time_unix_nano=0, name="zero")
    s.events.add(time_unix_nano=I64, name="last")
    s.attributes.add(key="d").value.double_value = math.nan
    spans = decode_spans(msgs(req.SerializeToString()), "otlp_proto", 10**6, LIMITS)
    assert spans.invalid == [] and len(spans.rows) == 1
    store.insert(f"{store.database}.otel_traces", spans.rows, TRACE_COLUMNS)
    [(ts, duration, events, kind, attrs)] = store.query(
        f"SELECT toUnixTimestamp64Nano(Timestamp), Duration, arrayMap(t -> toUnixTimestamp64Nano(t), "
        f"Events.Timestamp), SpanKind, SpanAttributes FROM {store.database}.otel_traces").result_rows
    assert (ts, duration, events, kind, attrs) == (T, U64 - T, [0, I64], "", {"d": "NaN"})

    req = ExportMetricsServiceRequest()
    metrics = req.resource_metrics.add().scope_metrics.add().metrics
    g = metrics.add(name="g")
    for v in (math.nan, math.inf, -math.inf):
        dp = g.gauge.data_points.add(start_time_unix_nano=I64, time_unix_nano=T, as_double=v)
        dp.exemplars.add(time_unix_nano=I64, as_double=math.nan)
    h = metrics.add(name="h")
    h.histogram.data_points.add(start_time_unix_nano=0, time_unix_nano=T, count=U64, sum=math.nan,
                                min=-math.inf, max=math.inf, bucket_counts=[U64], explicit_bounds=[])
    h.histogram.aggregation_temporality = 77  # not a known temporality: the Int32 column takes it
    batch = decode_metrics(msgs(req.SerializeToString()), "otlp_proto", 10**6, LIMITS)
    assert batch.invalid == [] and (len(batch.gauge), len(batch.histogram)) == (3, 1)
    for kind, (table, columns) in METRIC_TABLES.items():
        store.insert(f"{store.database}.{table}", getattr(batch, kind), columns)
    values = [r[0] for r in store.query(f"SELECT Value FROM {store.database}.otel_metrics_gauge ORDER BY Value")
              .result_rows]
    assert values[:2] == [-math.inf, math.inf] and math.isnan(values[2])
    [(count, total, low, high, temporality)] = store.query(
        f"SELECT Count, Sum, Min, Max, AggregationTemporality FROM {store.database}.otel_metrics_histogram").result_rows
    assert (count, low, high, temporality) == (U64, -math.inf, math.inf, 77) and math.isnan(total)


# ---- whatever a decoder accepts, the store takes -------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)
ALERT = {"kind": "alert", "alert_id": "a", "status": "firing", "experiment_id": "e", "rule": "r", "severity": "abort",
         "measurement": "m", "comparison": ">", "threshold": 0.1, "observed": 0.2, "samples": 3,
         "window_start": NOW.isoformat(), "window_end": NOW.isoformat(), "top_contributors": [],
         "example_request_ids": ["x"], "message": "m", "action": "", "url": "", "ok": True, "status_code": 200,
         "attempts": 1, "error": "", "time": NOW.isoformat()}
NANOS = st.one_of(st.integers(0, U64), st.integers(T - 10**12, T + 10**12), st.sampled_from([0, I64, I64 + 1, U64]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def _span_request(spans: list) -> bytes:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i, (start, end, events, kind, code, value) in enumerate(spans):
        s = ss.spans.add(name=f"s{i}", start_time_unix_nano=start, end_time_unix_nano=end, kind=kind)
        s.status.code = code
        s.trace_id, s.span_id = bytes([i + 1] * 16), bytes([i + 1] * 8)
        for t in events:
            s.events.add(time_unix_nano=t, name="e")
        s.attributes.add(key="v").value.double_value = value
    return req.SerializeToString()


def _log_request(records: list) -> bytes:
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for t, observed, flags, severity, value in records:
        r = sl.log_records.add(time_unix_nano=t, observed_time_unix_nano=observed, flags=flags,
                               severity_number=severity)
        r.body.double_value = value
    return req.SerializeToString()


def _metric_request(points: list) -> bytes:
    req = ExportMetricsServiceRequest()
    metrics = req.resource_metrics.add().scope_metrics.add().metrics
    g, h = metrics.add(name="g"), metrics.add(name="h")
    for start, t, value, exemplar, count in points:
        g.gauge.data_points.add(start_time_unix_nano=start, time_unix_nano=t, as_double=value).exemplars.add(
            time_unix_nano=exemplar, as_double=value)
        h.histogram.data_points.add(start_time_unix_nano=start, time_unix_nano=t, count=count, sum=value,
                                    min=value, max=value, bucket_counts=[count], explicit_bounds=[])
    return req.SerializeToString()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(ALERT)), JSON_VALUES), max_size=3))
def test_every_alert_the_decoder_accepts_the_store_takes(store, changes):
    value = json.dumps({**ALERT, **dict(changes)}, allow_nan=True).encode()
    batch = decode_alerts(msgs(value), 10**6, LIMITS)
    store.insert(f"{store.database}.alerts", batch.rows, ALERT_COLUMNS)  # raises StoreRejected if refused


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(NANOS, NANOS, st.lists(NANOS, max_size=2), st.integers(-2**31, 2**31 - 1),
                          st.integers(-2**31, 2**31 - 1), FLOATS), min_size=1, max_size=4),
       st.lists(st.tuples(NANOS, NANOS, FLOATS, NANOS, st.integers(0, U64)), min_size=1, max_size=4),
       st.lists(st.tuples(NANOS, NANOS, st.integers(0, 2**32 - 1), st.integers(-2**31, 2**31 - 1), FLOATS),
                min_size=1, max_size=4))
def test_every_span_log_and_data_point_the_decoders_accept_the_store_takes(store, spans, points, records):
    batch = decode_spans(msgs(_span_request(spans)), "otlp_proto", 10**6, LIMITS)
    store.insert(f"{store.database}.otel_traces", batch.rows, TRACE_COLUMNS)
    batch = decode_logs(msgs(_log_request(records)), "otlp_proto", 10**6, LIMITS)
    store.insert(f"{store.database}.otel_logs", batch.rows, LOG_COLUMNS)
    batch = decode_metrics(msgs(_metric_request(points)), "otlp_proto", 10**6, LIMITS)
    for kind, (table, columns) in METRIC_TABLES.items():
        store.insert(f"{store.database}.{table}", getattr(batch, kind), columns)


LEG = json.loads(encode_event(new_event(RequestLeg(
    correlation_id="c", leg="shadow", gateway="g", route="/r", method="GET", backend="b", status=200,
    latency_ms=1.0, event_time=NOW), source="/g")))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(LEG["data"]) + ["request_bytes", "response_bytes"]),
                          JSON_VALUES | st.floats(0, 1e308) | st.integers(0, 2**64)), max_size=3))
def test_every_request_leg_the_decoder_accepts_the_store_takes(store, changes):
    doc = json.loads(json.dumps(LEG))
    doc["data"].update(dict(changes))
    batch = decode_request_legs(msgs(json.dumps(doc).encode()), 10**6, LIMITS)
    store.insert(f"{store.database}.requests", batch.rows, REQUEST_COLUMNS)


PAIR = json.loads(encode_pair(ShadowPair(correlation_id="c", gateway="g", route="/r", method="GET", primary_backend="b",
                                         outcome="match", event_time=NOW), "/hub/pairing"))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(PAIR["data"]) + ["latency_primary_ms", "latency_diff_ms",
                                                                  "shadow_status", "differing_fields"]),
                          JSON_VALUES | st.floats(-1e308, 1e308) | st.integers(-2**64, 2**64)), max_size=3))
def test_every_shadow_pair_the_decoder_accepts_the_store_takes(store, changes):
    doc = json.loads(json.dumps(PAIR))
    doc["data"].update(dict(changes))
    batch = decode_pairs(msgs(json.dumps(doc).encode()), 10**6, LIMITS)
    store.insert(f"{store.database}.shadow_pairs", batch.rows, PAIR_COLUMNS)
