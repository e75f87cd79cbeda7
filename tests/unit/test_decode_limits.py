"""The limits of the request-leg, shadow-pair and alert decoders: nesting depth, size, types and
event times. Whatever the bytes, a decoder answers with rows and refused records, never an
exception, and a refused record says why."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.abort.records import ALERT_COLUMNS, decode_alerts
from hub.records.decode import Limits, RawMessage, decode_request_legs, too_deep
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.shadow.records import ShadowPair, decode_pairs, encode_pair

UTC = timezone.utc
MAX = 1_000_000
#: The decoders' clock in these tests: 2026-01-01T00:00:00Z.
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits(MAX)


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def leg(i: int = 0, event_time: str | None = None, **data) -> bytes:
    d = RequestLeg(correlation_id=f"c{i}", leg="primary", gateway="g", route="/r", method="GET", backend="b",
                   status=200, latency_ms=1.5, event_time=NOW - timedelta(hours=1))
    doc = orjson.loads(encode_event(new_event(d, source="/g", id=str(uuid.UUID(int=i + 1)))))
    if event_time is not None:
        doc["data"]["event_time"] = event_time
    doc["data"].update(data)
    return orjson.dumps(doc)


def pair(i: int = 0, event_time: str | None = None, **data) -> bytes:
    p = ShadowPair(correlation_id=f"c{i}", gateway="g", route="/r", method="GET", primary_backend="b",
                   outcome="match", event_time=NOW - timedelta(hours=1))
    doc = orjson.loads(encode_pair(p, "/hub/pairing"))
    if event_time is not None:
        doc["data"]["event_time"] = event_time
    doc["data"].update(data)
    return orjson.dumps(doc)


def alert(**fields) -> bytes:
    doc = {"kind": "alert", "alert_id": "a1", "status": "firing", "experiment_id": "e", "rule": "r",
           "severity": "abort", "measurement": "error_rate", "comparison": ">", "threshold": 0.1,
           "observed": 0.3, "samples": 12, "window_start": _z(NOW - timedelta(minutes=2)),
           "window_end": _z(NOW - timedelta(minutes=1)), "top_contributors": [{"route": "/r", "value": 0.4}],
           "example_request_ids": ["x"], "message": "m", "time": _z(NOW - timedelta(minutes=1))}
    doc.update(fields)
    return json.dumps(doc).encode()


def msgs(*values: bytes | None, topic: str = "t") -> list[RawMessage]:
    return [RawMessage(topic, 2, 100 + i, None, v, 0) for i, v in enumerate(values)]


def requests(*values, limits: Limits = LIMITS):
    return decode_request_legs(msgs(*values), MAX, limits, now=NOW.timestamp())


def pairs(*values, limits: Limits = LIMITS):
    return decode_pairs(msgs(*values), MAX, limits, now=NOW.timestamp())


def alerts(*values, limits: Limits = LIMITS):
    return decode_alerts(msgs(*values), MAX, limits, now=NOW.timestamp())


def reasons(batch) -> list[tuple[int, int, str]]:
    return [(i.offset, i.index, i.reason) for i in batch.invalid]


def nested(levels: int, inner: bytes = b"1") -> bytes:
    return b"[" * levels + inner + b"]" * levels


DEEP = b'{"a":' + nested(50_000) + b"}"
DEEP_DATA = leg(9).replace(b'"correlation_id":"c9"', b'"correlation_id":' + nested(50_000))

# ---- nesting depth -----------------------------------------------------------------------------


def test_too_deep_counts_levels_of_arrays_and_objects_outside_strings():
    assert not too_deep(nested(64), 64) and too_deep(nested(65), 64)
    assert not too_deep(b'{"a":{"b":[{"c":[]}]}}', 5) and too_deep(b'{"a":{"b":[{"c":[]}]}}', 4)
    assert not too_deep(b'["[[[[[[[[[[", "\\"[[[[[[[["]', 1)       # brackets inside strings do not count
    assert not too_deep(b"[" + b"{},[]," * 10_000 + b"1]", 2)      # many brackets, shallow
    assert too_deep(b"[" * 50_000, 64)                              # unbalanced input gets an answer too


@pytest.mark.parametrize("decode, good", [(requests, leg), (pairs, pair)], ids=["requests", "pairs"])
def test_deeply_nested_cloudevents_are_refused_and_their_neighbours_decode(decode, good):
    deep_data = good(9).replace(b'"correlation_id":"c9"', b'"correlation_id":' + nested(50_000))
    # an event too deep for the JSON decoder to skip: the batch is split by its brackets instead
    too_deep_for_the_decoder = b"[" + good(3) + b"," + nested(10_000) + b"," + good(4) + b"]"
    one_deep_event = b"[" + good(5) + b"," + nested(200) + b"," + good(6) + b"]"
    batch = decode(good(1), DEEP, deep_data, nested(50_000), too_deep_for_the_decoder, one_deep_event, good(2))
    assert [row[4 if decode is requests else 5] for row in batch.rows] == ["c1", "c3", "c4", "c5", "c6", "c2"]
    reason = "too deeply nested: > 64 levels"
    assert reasons(batch) == [(101, -1, reason), (102, -1, reason), (103, 0, reason), (104, 1, reason),
                              (105, 1, reason)]
    assert batch.sources == [(100, -1), (104, 0), (104, 2), (105, 0), (105, 2), (106, -1)]


def test_split_array_finds_the_elements_of_an_array_without_decoding_them():
    from hub.records.decode import split_array

    assert split_array(b' [1, {"a":"[,]"} , [2,3]] ') == [b"1", b'{"a":"[,]"}', b"[2,3]"]
    assert split_array(b"[]") == [] and split_array(b"[" + nested(50_000) + b"]") == [nested(50_000)]
    assert split_array(b"[1] trailing") is None and split_array(b"x[1]") is None and split_array(b"[1, [2") is None


def test_the_depth_limit_is_configurable():
    limits = Limits(MAX, max_depth=2)
    assert requests(leg(1), b"[" + leg(2) + b"]", limits=limits).invalid == []
    with_extra = orjson.dumps({**orjson.loads(leg(3)), "x": [[1]]})
    batch = requests(b'{"x":[[1]]}', with_extra, leg(4), limits=limits)
    assert reasons(batch) == [(100, -1, "too deeply nested: > 2 levels"), (101, -1, "too deeply nested: > 2 levels")]
    assert [i.reason for i in requests(with_extra).invalid] == ["schema: Object contains unknown field x"]


def test_deeply_nested_alerts_are_refused():
    batch = alerts(alert(), DEEP, alert(top_contributors=json.loads(nested(30))), alert(top_contributors=[[[[1]]]]),
                   alert(top_contributors=json.loads(nested(70))))
    assert batch.sources == [(100, -1), (102, -1), (103, -1)]
    assert reasons(batch) == [(101, -1, "too deeply nested: > 64 levels"), (104, -1, "too deeply nested: > 64 levels")]


# ---- size ----------------------------------------------------------------------------------------


def test_every_decoder_refuses_records_over_the_limit():
    big = Limits(max_bytes=2_000)
    padded = alert(message="x" * 5_000)
    assert reasons(alerts(padded, limits=big)) == [(100, -1, f"oversized: {len(padded)} bytes > 2000")]
    assert [i.reason.split(":")[0] for i in alerts(alert(message="x" * 1_100_000)).invalid] == ["oversized"]
    long_leg = leg(1, error="y" * 5_000)
    assert reasons(requests(long_leg, limits=big)) == [(100, -1, f"oversized: {len(long_leg)} bytes > 2000")]
    long_pair = pair(1, shadow_error="y" * 5_000)
    assert reasons(pairs(long_pair, limits=big)) == [(100, -1, f"oversized: {len(long_pair)} bytes > 2000")]


# ---- wrong types -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, reason", [
    (leg(1, status="200"), "schema: Expected int, got str - at $.data.status"),
    (leg(1, latency_ms="1.5"), "schema: Expected float, got str - at $.data.latency_ms"),
    (leg(1, leg="tertiary"), "schema: Invalid enum value 'tertiary' - at $.data.leg"),
    (leg(1, request_bytes=2**64 - 1), "schema: Expected int <= 4294967295 - at $.data.request_bytes"),
    (leg(1, status=True), "schema: Expected int, got bool - at $.data.status"),
    (leg(1).replace(b'"latency_ms":1.5', b'"latency_ms":NaN'), "not JSON"),
    (leg(1).replace(b'"latency_ms":1.5', b'"latency_ms":1e999'), "schema: Number out of range - at $.data.latency_ms"),
    (leg(1).replace(b'"gateway":"g"', b'"gateway":"\xff\xfe"'), "not JSON"),
    (leg(1).replace(b'"gateway":"g"', b'"gateway":"\\ud800"'), "not JSON"),
])
def test_wrong_types_in_a_request_leg_are_refused_with_the_reason(value, reason):
    batch = requests(leg(0), value, leg(2))
    assert len(batch.rows) == 2
    [(offset, index, got)] = reasons(batch)
    assert (offset, index) == (101, -1) and got.startswith(reason), got


@pytest.mark.parametrize("value, reason", [
    (pair(1, outcome="maybe"), "schema: Invalid enum value 'maybe' - at $.data.outcome"),
    (pair(1, primary_status="200"), "schema: Expected int, got str - at $.data.primary_status"),
    (pair(1, latency_primary_ms=-1), "schema: Expected float >= 0"),
    (pair(1, differing_fields=[1]), "schema: Expected str, got int - at $.data.differing_fields[0]"),
    (pair(1).replace(b'"gateway":"g"', b'"gateway":"\xc3\x28"'), "not JSON"),
])
def test_wrong_types_in_a_shadow_pair_are_refused_with_the_reason(value, reason):
    batch = pairs(pair(0), value, pair(2))
    assert len(batch.rows) == 2
    [(offset, index, got)] = reasons(batch)
    assert (offset, index) == (101, -1) and got.startswith(reason), got


@pytest.mark.parametrize("value, reason", [
    (alert(kind=5), "schema: Expected str, got int - at $.kind"),
    (alert(kind="firing"), "schema: Invalid enum value 'firing' - at $.kind"),
    (alert(samples="12"), "schema: Expected int | null, got str - at $.samples"),
    (alert(samples=-1), "schema: Expected int >= 0 - at $.samples"),
    (alert(samples=2**64), "schema: Integer exceeds 64-bit range"),
    (alert(threshold="0.1"), "schema: Expected float | null, got str - at $.threshold"),
    (alert(status_code=70_000), "schema: Expected int <= 65535 - at $.status_code"),
    (alert(attempts=256), "schema: Expected int <= 255 - at $.attempts"),
    (alert(ok="yes"), "schema: Expected bool | null, got str - at $.ok"),
    (alert(example_request_ids="x"), "schema: Expected array | null, got str - at $.example_request_ids"),
    (alert(experiment_id=None), "schema: Expected str, got null - at $.experiment_id"),
    (alert(time="soon"), "schema: time is not an ISO 8601 time ('soon')"),
    (alert(message="\ud800"), "schema: str is not valid UTF-8: surrogates not allowed"),
    (alert().replace(b'"m"', b'"\xff"'), "not JSON"),
    (b"[1, 2]", "schema: not an alert record (a JSON list)"),
    (b"{", "not JSON"),
])
def test_wrong_types_in_an_alert_are_refused_with_the_reason(value, reason):
    batch = alerts(alert(), value, alert(alert_id="a2"))
    assert [row[2] for row in batch.rows] == ["a1", "a2"]
    [(offset, index, got)] = reasons(batch)
    assert (offset, index) == (101, -1) and got.startswith(reason), got


def test_an_alert_row_holds_only_values_its_columns_take():
    [row] = alerts(alert(observed=None, ok=None, alert_id=None, breach_since="x", extra={"k": 1})).rows
    r = dict(zip(ALERT_COLUMNS, row))
    assert (r["alert_id"], r["observed"], r["ok"], r["samples"], r["attempts"]) == ("", None, None, 12, 0)
    assert r["time"] == NOW - timedelta(minutes=1) and r["time"].tzinfo == UTC
    assert r["top_contributors"] == '[{"route": "/r", "value": 0.4}]'


def test_nan_and_infinity_are_kept_in_the_float_columns_of_an_alert():
    value = alert().replace(b'"threshold": 0.1', b'"threshold": NaN').replace(b'"observed": 0.3', b'"observed": Infinity')
    [row] = alerts(value).rows
    r = dict(zip(ALERT_COLUMNS, row))
    assert math.isnan(r["threshold"]) and r["observed"] == math.inf


# ---- event times ----------------------------------------------------------------------------------

WINDOW = "(accepted: from year 2000 to 2026-01-02T00:00:00.000Z)"


@pytest.mark.parametrize("when", [
    "1970-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z", "2026-01-02T00:00:00.001Z", "2026-03-01T00:00:00Z",
    "2106-02-07T06:28:16Z", "9999-12-31T23:59:59Z",
])
def test_request_legs_and_pairs_out_of_the_time_window_are_refused(when):
    batch = requests(leg(0), leg(1, event_time=when), b"[" + leg(2) + b"," + leg(3, event_time=when) + b"]")
    assert [row[4] for row in batch.rows] == ["c0", "c2"] and batch.sources == [(100, -1), (102, 0)]
    shown = datetime.fromisoformat(when.replace("Z", "+00:00"))
    reason = f"timestamp out of range: {shown.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} {WINDOW}"
    assert reasons(batch) == [(101, -1, reason), (102, 1, reason)]
    batch = pairs(pair(0), pair(1, event_time=when))
    assert len(batch.rows) == 1 and reasons(batch) == [(101, -1, reason)]


def test_the_edges_of_the_window_are_accepted_and_the_window_is_configurable():
    edges = [leg(1, event_time="2000-01-01T00:00:00Z"), leg(2, event_time="2026-01-02T00:00:00Z"),
             leg(3, event_time="2026-01-01T05:00:00+05:00")]
    assert requests(*edges).invalid == []
    wide = Limits(MAX, max_future_seconds=10 * 365 * 86400, min_year=1990)
    assert requests(leg(1, event_time="1995-06-01T00:00:00Z"), leg(2, event_time="2030-01-01T00:00:00Z"),
                    limits=wide).invalid == []
    # beyond what the column holds, however wide the window
    huge = Limits(MAX, max_future_seconds=10**12, min_year=1)
    assert [i.reason.split(":")[0] for i in requests(leg(1, event_time="2300-01-01T00:00:00Z"),
                                                     leg(2, event_time="1899-12-31T23:59:59Z"),
                                                     limits=huge).invalid] == ["timestamp out of range"] * 2


@pytest.mark.parametrize("field", ["time", "window_start", "window_end"])
@pytest.mark.parametrize("when", ["1970-01-01T00:00:00+00:00", "2026-01-03T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_alert_times_out_of_the_window_are_refused(field, when):
    [(offset, _, reason)] = reasons(alerts(alert(), alert(**{field: when})))
    assert (offset, reason) == (101, f"timestamp out of range: {field} {when} {WINDOW}")


# ---- no bytes make a decoder raise ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def _mutated(base: bytes):
    """A good record with one field replaced by any JSON value."""
    doc = orjson.loads(base)
    keys = [("data", k) for k in doc["data"]] + [(k,) for k in doc if k != "data"]
    return st.tuples(st.sampled_from(keys), JSON_VALUES).map(lambda kv: _replace(doc, *kv))


def _replace(doc: dict, path: tuple, value) -> bytes:
    doc = json.loads(json.dumps(doc))
    (doc["data"] if len(path) == 2 else doc)[path[-1]] = value
    return json.dumps(doc, allow_nan=True).encode()


def _deep(levels: int) -> bytes:
    return b'{"data":' + b'[{"a":' * levels + b"1" + b"}]" * levels + b"}"


ANY_BYTES = st.one_of(
    st.binary(max_size=300),
    st.integers(1, 20_000).map(lambda n: nested(n)),
    st.integers(1, 20_000).map(_deep),
    st.integers(1, 20_000).map(lambda n: b"[" * n),
    JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True).encode()),
)


def _check(batch, count: int) -> None:
    assert len(batch.sources) == len(batch.rows)
    assert len({(o, i) for o, i in batch.sources}) == len(batch.sources)
    assert all(isinstance(i.reason, str) and i.reason for i in batch.invalid)
    assert {i.offset for i in batch.invalid} | {o for o, _ in batch.sources} <= set(range(100, 100 + count))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_BYTES | _mutated(leg(0)), min_size=1, max_size=4))
def test_no_bytes_make_the_request_leg_decoder_raise(values):
    batch = requests(*values)
    _check(batch, len(values))
    batch = requests(b"[" + b",".join(values) + b"]")
    _check(batch, 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_BYTES | _mutated(pair(0)), min_size=1, max_size=4))
def test_no_bytes_make_the_pair_decoder_raise(values):
    _check(pairs(*values), len(values))


def _alert_mutated():
    doc = json.loads(alert())
    return st.tuples(st.sampled_from(sorted(doc)), JSON_VALUES).map(
        lambda kv: json.dumps({**doc, kv[0]: kv[1]}, allow_nan=True).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_BYTES | _alert_mutated(), min_size=1, max_size=4))
def test_no_bytes_make_the_alert_decoder_raise(values):
    batch = alerts(*values)
    _check(batch, len(values))
    for row in batch.rows:  # every accepted row fits its columns
        r = dict(zip(ALERT_COLUMNS, row))
        assert r["kind"] in ("alert", "action") and isinstance(r["experiment_id"], str)
        assert 0 <= r["samples"] < 2**64 and 0 <= r["attempts"] < 256
        assert r["status_code"] is None or 0 <= r["status_code"] < 65536
        assert all(isinstance(x, str) for x in r["example_request_ids"])
        assert all(isinstance(r[c], str) for c in ("alert_id", "status", "rule", "message", "error", "url"))
        [c.encode() for c in (r["message"], r["alert_id"], r["top_contributors"])]


def test_a_latency_too_large_for_its_float32_column_is_refused():
    batch = requests(leg(0, latency_ms=3.4028234663852886e38), leg(1, latency_ms=3.5e38),
                     b"[" + leg(2) + b"," + leg(3, latency_ms=1e300) + b"]")
    assert [row[4] for row in batch.rows] == ["c0", "c2"]
    assert reasons(batch) == [(101, -1, "schema: latency_ms 3.5e+38 does not fit Float32"),
                              (102, 1, "schema: latency_ms 1e+300 does not fit Float32")]
    batch = pairs(pair(0, latency_diff_ms=-3.4e38), pair(1, latency_diff_ms=-3.5e38), pair(2, latency_shadow_ms=1e39))
    assert [row[5] for row in batch.rows] == ["c0"]
    assert reasons(batch) == [(101, -1, "schema: latency_diff_ms -3.5e+38 does not fit Float32"),
                              (102, -1, "schema: latency_shadow_ms 1e+39 does not fit Float32")]


def test_without_limits_only_the_columns_range_holds():
    old, late = leg(1, event_time="1990-01-01T00:00:00Z"), leg(2, event_time="2200-01-01T00:00:00Z")
    assert decode_request_legs(msgs(old, late), MAX).invalid == []
    assert [i.reason.split(":")[0] for i in requests(old, late).invalid] == ["timestamp out of range"] * 2
    [bad] = decode_request_legs(msgs(leg(3, event_time="2300-01-01T00:00:00Z")), MAX).invalid
    assert bad.reason == ("timestamp out of range: 2300-01-01T00:00:00.000Z "
                          "(accepted: from year 1900 to 2299-12-31T23:59:59.999Z)")
    assert decode_alerts(msgs(alert(time="1990-01-01T00:00:00+00:00")), MAX).invalid == []


# ---- the retention bound: nothing is accepted that the table's TTL drops at once -------------------

KEPT = Limits(MAX, ttl_days=90)
OLDER = "older than the store keeps (HUB_TTL_DAYS=90)"


@pytest.mark.parametrize("days", [91, 120, 365 * 26])
def test_request_legs_and_pairs_older_than_the_ttl_are_refused_as_out_of_range(days):
    when = _z(NOW - timedelta(days=days))
    batch = requests(leg(0), leg(1, event_time=when), b"[" + leg(2) + b"," + leg(3, event_time=when) + b"]",
                     limits=KEPT)
    assert [row[4] for row in batch.rows] == ["c0", "c2"] and batch.sources == [(100, -1), (102, 0)]
    shown = (NOW - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    reason = f"timestamp out of range: {shown} {OLDER}"
    assert reasons(batch) == [(101, -1, reason), (102, 1, reason)]
    batch = pairs(pair(0), pair(1, event_time=when), limits=KEPT)
    assert len(batch.rows) == 1 and reasons(batch) == [(101, -1, reason)]


def test_times_within_the_ttl_are_accepted_and_a_ttl_of_0_or_beyond_the_minimum_year_adds_no_bound():
    inside = [leg(1, event_time=_z(NOW - timedelta(days=89, hours=23))), leg(2)]
    assert requests(*inside, limits=KEPT).invalid == []
    old = leg(1, event_time=_z(NOW - timedelta(days=120)))
    assert requests(old, limits=Limits(MAX, ttl_days=0)).invalid == []
    assert requests(old, limits=Limits(MAX, ttl_days=400)).invalid == []
    # a bound earlier than the minimum year: the minimum year's wording
    [bad] = requests(leg(1, event_time="1999-06-01T00:00:00Z"), limits=Limits(MAX, ttl_days=365 * 40)).invalid
    assert bad.reason.endswith(WINDOW)
    # a time too far ahead: the window named with the retention bound as its start
    [bad] = requests(leg(1, event_time="2026-03-01T00:00:00Z"), limits=KEPT).invalid
    assert bad.reason == ("timestamp out of range: 2026-03-01T00:00:00.000Z (accepted: from 90 days ago "
                          "(HUB_TTL_DAYS) to 2026-01-02T00:00:00.000Z)")


def test_the_settings_ttl_bounds_the_window_and_tables_without_a_ttl_drop_it():
    from hub.records.decode import limits_from
    from hub.settings import Settings

    assert limits_from(Settings().with_overrides(ttl_days=90)).ttl_days == 90
    assert limits_from(Settings().with_overrides(ttl_days=0)).ttl_days == 0
    old = _z(NOW - timedelta(days=120))
    assert alerts(alert(time=old, window_start=old, window_end=old), limits=KEPT.without_ttl()).invalid == []
    [bad] = alerts(alert(time=old), limits=KEPT).invalid
    assert bad.reason.endswith(OLDER)
    assert KEPT.without_ttl() == Limits(MAX)


# ---- a lone surrogate is named for what it is ---------------------------------------------------------

LONE = "JSON is malformed: invalid utf-16 surrogate pair: \\ud800 is not followed by a low surrogate"


def test_a_lone_surrogate_is_refused_with_a_true_reason_by_every_json_decoder():
    from hub.experiments.events import BadEvent, decode_event

    bad_leg = json.dumps({**orjson.loads(leg(1)), "data": {**orjson.loads(leg(1))["data"], "error": "\ud800"}}).encode()
    assert b"\\ud800" in bad_leg
    batch = requests(leg(0), bad_leg, b"[" + leg(2) + b"," + bad_leg + b"]")
    assert [(o, i, r.split(" (byte")[0]) for o, i, r in reasons(batch)] == [
        (101, -1, "not JSON: " + LONE), (102, -1, "not JSON: " + LONE)]  # a batch that is not JSON: whole
    bad_pair = pair(1).replace(b'"outcome":"match"', b'"outcome":"\\ud800"')
    [(_, _, reason)] = reasons(pairs(pair(0), bad_pair))
    assert reason.startswith("not JSON: " + LONE)
    with pytest.raises(BadEvent, match="not JSON: " + LONE.replace("\\", "\\\\")):
        decode_event(b'{"kind": "note_added", "text": "\\ud800"}')
    # a pair that is whole, an escaped backslash and a truncated record keep msgspec's words
    assert requests(leg(1).replace(b'"gateway":"g"', b'"gateway":"\\ud83d\\ude00"')).invalid == []
    assert requests(leg(1).replace(b'"gateway":"g"', b'"gateway":"\\\\ud800"')).invalid == []
    [(_, _, reason)] = reasons(requests(leg(1)[:-5]))
    assert reason == "not JSON: Input data was truncated"
