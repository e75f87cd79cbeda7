"""The limits of the OTLP decoders (spans, logs, metrics; protobuf and JSON): nesting depth, size,
types and timestamps. Whatever the bytes, a decoder answers with rows and refused records, never an
exception; a row it gives is one its table takes."""

from __future__ import annotations

import base64
import math
from datetime import datetime, timezone

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hub.otel.decode import (
    GAUGE_COLUMNS,
    LOG_COLUMNS,
    METRIC_TABLES,
    SUM_COLUMNS,
    TRACE_COLUMNS,
    decode_logs,
    decode_metrics,
    decode_spans,
)
from hub.records.decode import Limits, RawMessage, iso_nanos

UTC = timezone.utc
MAX = 1_000_000
NOW = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
T = int(NOW - 3600) * 10**9  # an hour before the decoders' clock
DAY = 86_400 * 10**9
U64 = 2**64 - 1
LIMITS = Limits(MAX)


def msgs(*values: bytes | None) -> list[RawMessage]:
    return [RawMessage("otlp", 1, 10 + i, None, v, 0) for i, v in enumerate(values)]


def spans_of(*starts: int, events: tuple[int, ...] = (), attr=None, end: int | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i, start in enumerate(starts):
        s = ss.spans.add(name=f"s{i}", start_time_unix_nano=start, end_time_unix_nano=end if end is not None else start)
        s.trace_id = bytes([1] * 16)
        s.span_id = bytes([i + 1] * 8)
        for t in events:
            s.events.add(time_unix_nano=t, name="e")
        if attr is not None:
            kv = s.attributes.add(key="a")
            kv.value.CopyFrom(attr)
    return req


def logs_of(*times: tuple[int, int], body=None) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for t, observed in times:
        r = sl.log_records.add(time_unix_nano=t, observed_time_unix_nano=observed)
        if body is not None:
            r.body.CopyFrom(body)
        else:
            r.body.string_value = "b"
    return req


def gauge_of(*points: tuple[int, int], value: float = 1.0, exemplar: int | None = None) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    for start, t in points:
        dp = m.gauge.data_points.add(start_time_unix_nano=start, time_unix_nano=t, as_double=value)
        if exemplar is not None:
            dp.exemplars.add(time_unix_nano=exemplar, as_double=1.0)
    return req


def proto(req) -> bytes:
    return req.SerializeToString()


def as_json(req) -> bytes:
    """OTLP/JSON as the Collector writes it: ids in hex, 64-bit integers as strings."""
    doc = json_format.MessageToDict(req)

    def hexify(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    hexify(v)
        elif isinstance(node, list):
            for v in node:
                hexify(v)
    hexify(doc)
    return orjson.dumps(doc)


def spans(*values, limits: Limits = LIMITS, encoding: str = "auto"):
    return decode_spans(msgs(*values), encoding, MAX, limits, now=NOW)


def logs(*values, limits: Limits = LIMITS, encoding: str = "auto"):
    return decode_logs(msgs(*values), encoding, MAX, limits, now=NOW)


def metrics(*values, limits: Limits = LIMITS, encoding: str = "auto"):
    return decode_metrics(msgs(*values), encoding, MAX, limits, now=NOW)


def reasons(batch) -> list[tuple[int, int, str]]:
    return [(i.offset, i.index, i.reason) for i in batch.invalid]


def nested_any(levels: int, kind: str = "array"):
    """An AnyValue that nests ``levels`` arrays (or key-value lists) around a string."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    root = AnyValue()
    v = root
    for _ in range(levels):
        if kind == "array":
            v = v.array_value.values.add()
        else:
            v = v.kvlist_value.values.add(key="k").value
    v.string_value = "x"
    return root


# ---- nesting depth -----------------------------------------------------------------------------


def test_deeply_nested_otlp_json_is_refused_before_it_is_parsed():
    good = as_json(spans_of(T))
    deep = b'{"resourceSpans":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    attr = as_json(spans_of(T, attr=nested_any(30, "kvlist")))  # 30 key-value lists: about 100 JSON levels
    batch = spans(good, deep, attr, good)
    assert len(batch.rows) == 2 and batch.sources == [(10, 0), (13, 0)]
    assert reasons(batch) == [(11, -1, "too deeply nested: > 64 levels"), (12, -1, "too deeply nested: > 64 levels")]
    assert spans(attr, limits=Limits(MAX, max_depth=200)).invalid == []


@pytest.mark.parametrize("kind", ["array", "kvlist"])
def test_protobuf_attribute_values_nested_too_deeply_are_refused(kind):
    ok, deep = proto(spans_of(T, attr=nested_any(5, kind))), proto(spans_of(T, attr=nested_any(12, kind)))
    batch = spans(ok, deep, ok, limits=Limits(MAX, max_depth=10))
    assert len(batch.rows) == 2 and batch.sources == [(10, 0), (12, 0)]
    assert reasons(batch) == [(11, -1, "too deeply nested: > 10 levels")]
    # beyond what the protobuf decoder itself takes (100 message levels)
    [(_, _, reason)] = reasons(spans(proto(spans_of(T, attr=nested_any(60, kind)))))
    assert reason.startswith("too deeply nested: over protobuf's 100 message levels")


def test_log_bodies_nested_too_deeply_are_refused():
    batch = logs(proto(logs_of((T, 0), body=nested_any(3))), proto(logs_of((T, 0), body=nested_any(9, "kvlist"))),
                 limits=Limits(MAX, max_depth=8))
    assert [r[LOG_COLUMNS.index("Body")] for r in batch.rows] == ['[[["x"]]]']
    assert reasons(batch) == [(11, -1, "too deeply nested: > 8 levels")]


# ---- size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("decode", [spans, logs, metrics])
def test_records_over_the_limit_are_refused(decode):
    small = Limits(max_bytes=100)
    value = b"{" + b" " * 200 + b"}"
    assert reasons(decode(value, limits=small)) == [(10, -1, "oversized: 202 bytes > 100")]


# ---- timestamps --------------------------------------------------------------------------------

LO, HI = 946_684_800 * 10**9, int(NOW) * 10**9 + DAY
WINDOW = "(accepted: from year 2000 to 2026-01-02T00:00:00.000Z)"


@pytest.mark.parametrize("start", [0, 1_000, LO - 1, HI + 1, 2**63 - 1, 2**63, U64])
@pytest.mark.parametrize("encode", [proto, as_json], ids=["proto", "json"])
def test_spans_out_of_the_window_are_refused_and_the_others_of_the_record_stored(start, encode):
    batch = spans(encode(spans_of(T, start, T + 1)), encode(spans_of(T + 2)))
    assert [r[0] for r in batch.rows] == [T, T + 1, T + 2]
    assert batch.sources == [(10, 0), (10, 2), (11, 0)]  # positions in the record, the refused one left out
    assert reasons(batch) == [(10, -1, f"timestamp out of range: span time {iso_nanos(start)} {WINDOW} "
                                        "(1 of 3 rows of the record refused)")]


def test_the_edges_of_the_window_are_accepted():
    assert spans(proto(spans_of(LO, HI))).invalid == []
    wide = Limits(MAX, max_future_seconds=10**12, min_year=1)
    batch = spans(proto(spans_of(0, 2**63 - 1, 2**63)), limits=wide)  # the column's own range still holds
    assert [r[0] for r in batch.rows] == [0, 2**63 - 1]
    assert reasons(batch)[0][2].startswith(f"timestamp out of range: span time {iso_nanos(2**63)} (accepted")


def test_span_event_times_must_fit_the_column():
    batch = spans(proto(spans_of(T, events=(T, U64))), proto(spans_of(T, events=(0, T))))
    assert [r[TRACE_COLUMNS.index("Events.Timestamp")] for r in batch.rows] == [[0, T]]
    assert reasons(batch)[0][2].startswith(f"timestamp out of range: span event/exemplar time {iso_nanos(U64)} (accepted")


def test_an_end_time_before_the_start_or_past_the_column_gives_a_duration_the_column_holds():
    batch = spans(proto(spans_of(T, end=U64)), proto(spans_of(T, end=0)))
    assert [r[TRACE_COLUMNS.index("Duration")] for r in batch.rows] == [U64 - T, 0]


@pytest.mark.parametrize("encode", [proto, as_json], ids=["proto", "json"])
def test_log_times_out_of_the_window_are_refused(encode):
    batch = logs(encode(logs_of((T, 0), (0, T + 5), (0, 0), (U64, T), (HI + 1, 0))))
    assert [r[0] for r in batch.rows] == [T, T + 5]
    assert reasons(batch) == [(10, -1, "timestamp out of range: log record time 1970-01-01T00:00:00.000000000Z "
                                       f"{WINDOW} "
                                       "(3 of 5 rows of the record refused)")]


@pytest.mark.parametrize("encode", [proto, as_json], ids=["proto", "json"])
def test_metric_times_out_of_the_window_or_the_column_are_refused(encode):
    batch = metrics(encode(gauge_of((0, T), (T - 5, T + 1), (0, U64), (U64, T), (0, 0))),
                    encode(gauge_of((0, T + 2), exemplar=U64)), encode(gauge_of((0, T + 3), exemplar=T)))
    at = GAUGE_COLUMNS.index("TimeUnix")
    assert [r[at] for r in batch.gauge] == [T, T + 1, T + 3]
    assert batch.sources["gauge"] == [(10, 0), (10, 1), (12, 0)]
    [(o1, _, r1), (o2, _, r2)] = reasons(batch)
    assert (o1, o2) == (10, 11)
    assert r1 == f"timestamp out of range: data point time {iso_nanos(U64)} {WINDOW} (3 rows of the record refused)"
    assert r2.startswith(f"timestamp out of range: data point event/exemplar time {iso_nanos(U64)} (accepted")


def test_a_metric_start_time_past_the_column_is_refused():
    [(_, _, reason)] = reasons(metrics(proto(gauge_of((U64, T)))))
    assert reason.startswith(f"timestamp out of range: data point start time {iso_nanos(U64)} (accepted")


# ---- values and types --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_kept_in_float_columns(value):
    batch = metrics(proto(gauge_of((0, T), value=value)))
    [got] = [r[GAUGE_COLUMNS.index("Value")] for r in batch.gauge]
    assert (math.isnan(got) if math.isnan(value) else got == value) and batch.invalid == []


def test_nan_in_otlp_json_is_kept_too():
    value = (b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"s","sum":{"dataPoints":[{'
             b'"timeUnixNano":"%d","asDouble":"NaN"},{"timeUnixNano":"%d","asDouble":"-Infinity"}]}}]}]}]}' % (T, T))
    batch = metrics(value)
    values = [r[SUM_COLUMNS.index("Value")] for r in batch.sum]
    assert math.isnan(values[0]) and values[1] == -math.inf and batch.invalid == []


@pytest.mark.parametrize("value, reason", [
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":5,"startTimeUnixNano":"%d"}]}]}]}' % T, "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n","startTimeUnixNano":"%d5"}]}]}]}' % U64,
     "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n","startTimeUnixNano":-1}]}]}]}', "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n","startTimeUnixNano":1.5e300}]}]}]}', "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\xff\xfe"}]}]}]}', "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\ud800"}]}]}]}', "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5}]}]}]}', "not OTLP JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n","startTimeUnixNano":NaN}]}]}]}', "not OTLP JSON"),
])
def test_wrong_types_in_otlp_json_are_refused_with_the_reason(value, reason):
    good = as_json(spans_of(T))
    batch = spans(good, value, good)
    assert len(batch.rows) == 2
    [(offset, index, got)] = reasons(batch)
    assert (offset, index) == (11, -1) and got.startswith(reason + ":"), got


@pytest.mark.parametrize("kind, shown", [(b"99", ""), (b"-5", ""), (b'"SPAN_KIND_NOPE"', "Unspecified"),
                                         (b"4294967296", "Unspecified")])
def test_an_unknown_enum_value_is_stored_as_a_value_its_column_takes(kind, shown):
    value = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n","kind":%s,"startTimeUnixNano":"%d",' \
            b'"status":{"code":7}}]}]}]}' % (kind, T)
    [row] = spans(value).rows
    assert (row[TRACE_COLUMNS.index("SpanKind")], row[TRACE_COLUMNS.index("StatusCode")]) == (shown, "")


def test_invalid_utf8_in_a_protobuf_string_is_refused():
    good = proto(spans_of(T))
    bad = good.replace(b"s0", b"\xff\xfe")
    assert bad != good
    [(offset, _, reason)] = reasons(spans(good, bad))
    assert offset == 11 and reason.startswith("not protobuf:")


# ---- no bytes make a decoder raise ----------------------------------------------------------------

ANY_BYTES = st.one_of(
    st.binary(max_size=400),
    st.integers(1, 20_000).map(lambda n: b'{"resourceSpans":' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 20_000).map(lambda n: b'{"resourceLogs":[' + b'{"a":' * n + b"1" + b"}" * n + b"]}"),
    st.integers(1, 60).map(lambda n: proto(spans_of(T, attr=nested_any(n)))),
    st.integers(1, 60).map(lambda n: proto(logs_of((T, 0), body=nested_any(n, "kvlist")))),
    st.lists(st.integers(0, U64), min_size=1, max_size=3).map(lambda ts: proto(spans_of(*ts, events=tuple(ts)))),
    st.lists(st.tuples(st.integers(0, U64), st.integers(0, U64)), min_size=1, max_size=3).map(
        lambda ps: proto(gauge_of(*ps, exemplar=ps[0][1]))),
    st.lists(st.tuples(st.integers(0, U64), st.integers(0, U64)), min_size=1, max_size=3).map(
        lambda ps: proto(logs_of(*ps))),
)


def _mutated_json():
    """OTLP/JSON with bytes flipped: mostly not JSON, sometimes JSON of the wrong shape."""
    base = as_json(spans_of(T, T + 1, events=(T,)))
    return st.tuples(st.integers(0, len(base) - 1), st.binary(min_size=1, max_size=3)).map(
        lambda cut: base[:cut[0]] + cut[1] + base[cut[0] + len(cut[1]):])


def _check(batch, count: int) -> None:
    assert all(isinstance(i.reason, str) and i.reason for i in batch.invalid)
    if isinstance(batch.sources, dict):
        tables = [(getattr(batch, kind), batch.sources[kind]) for kind in METRIC_TABLES]
    else:
        tables = [(batch.rows, batch.sources)]
    for rows, sources in tables:
        assert len(rows) == len(sources)
        assert {o for o, _ in sources} <= set(range(10, 10 + count))


def _fits(batch, time_at: int) -> None:
    for row in batch:
        assert LO <= row[time_at] <= HI


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_BYTES | _mutated_json(), min_size=1, max_size=4), st.sampled_from(["auto", "otlp_proto", "otlp_json"]))
def test_no_bytes_make_the_span_decoder_raise(values, encoding):
    batch = spans(*values, encoding=encoding)
    _check(batch, len(values))
    _fits(batch.rows, 0)
    for row in batch.rows:
        assert all(0 <= t <= 2**63 - 1 for t in row[TRACE_COLUMNS.index("Events.Timestamp")])
        assert 0 <= row[TRACE_COLUMNS.index("Duration")] <= U64


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_BYTES, min_size=1, max_size=4), st.sampled_from(["auto", "otlp_proto", "otlp_json"]))
def test_no_bytes_make_the_log_decoder_raise(values, encoding):
    batch = logs(*values, encoding=encoding)
    _check(batch, len(values))
    _fits(batch.rows, 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_BYTES, min_size=1, max_size=4), st.sampled_from(["auto", "otlp_proto", "otlp_json"]))
def test_no_bytes_make_the_metric_decoder_raise(values, encoding):
    batch = metrics(*values, encoding=encoding)
    _check(batch, len(values))
    at, start = GAUGE_COLUMNS.index("TimeUnix"), GAUGE_COLUMNS.index("StartTimeUnix")
    _fits(batch.gauge, at)
    assert all(row[start] <= 2**63 - 1 for row in batch.gauge)


# ---- the retention bound (HUB_TTL_DAYS) --------------------------------------------------------------


def test_spans_logs_and_points_older_than_the_ttl_are_refused_and_their_neighbours_kept():
    kept = Limits(MAX, ttl_days=90)
    old = T - 120 * DAY
    older = "older than the store keeps (HUB_TTL_DAYS=90)"
    for encode in (proto, as_json):
        batch = spans(encode(spans_of(T, old, T)), limits=kept)
        assert len(batch.rows) == 2
        [(offset, index, reason)] = reasons(batch)
        assert offset == 10 and reason.startswith("timestamp out of range: span time ") and older in reason
        batch = logs(encode(logs_of((T, T), (old, old))), limits=kept)
        assert len(batch.rows) == 1 and older in reasons(batch)[0][2]
        batch = metrics(encode(gauge_of((T, T), (old, old))), limits=kept)
        assert len(batch.gauge) == 1 and older in reasons(batch)[0][2]
        # within the TTL, or with no TTL: kept
        assert reasons(spans(encode(spans_of(T - 89 * DAY)), limits=kept)) == []
        assert reasons(spans(encode(spans_of(old)), limits=Limits(MAX))) == []
