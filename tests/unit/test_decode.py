"""The batch decoder, the dead-letter encoding and the synthetic traffic generator."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import orjson
import pytest

from hub.abort.records import ALERT_COLUMNS
from hub.errors import InvalidRecord
from hub.experiments.events import EVENT_COLUMNS
from hub.experiments.projection import PROJECTION_COLUMNS
from hub.names import RECORD_REQUEST_LEG
from hub.records.decode import (
    DEAD_LETTER_COLUMNS,
    REQUEST_COLUMNS,
    DecodedBatch,
    RawMessage,
    dead_letter_record_row,
    dead_letter_row,
    decode_dead_letter,
    decode_request_legs,
    to_dead_letter,
)
from hub.records.generate import encode_event, generate_request_legs
from hub.otel.decode import LOG_COLUMNS, METRIC_TABLES, TRACE_COLUMNS
from hub.records.request_leg import EVENT_ID_NAMESPACE, RequestLeg, RequestLegEvent, new_event, to_row
from hub.shadow.canary import VERDICT_COLUMNS
from hub.shadow.records import PAIR_COLUMNS
from hub.storage.sink import LEDGER_COLUMNS
from tests.migrated_columns import assert_columns_stored, written_tables

UTC = timezone.utc
TOPIC = "hub.requests"
MAX = 1_000_000
SQL = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"
START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def leg(**changes) -> RequestLeg:
    fields = dict(
        correlation_id="corr-1", leg="primary", gateway="edge-eu-1", route="/patients/{id}",
        method="GET", backend="patients", status=200, latency_ms=12.5,
        event_time=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2))),
        request_bytes=350, response_bytes=2400, response_hash="abc123",
    )
    fields.update(changes)
    return RequestLeg(**fields)


def good(i: int = 0, **changes) -> bytes:
    return encode_event(new_event(leg(**changes), source="/gateways/edge-eu-1", id=str(uuid.UUID(int=i + 1))))


def doc(**data_changes) -> dict:
    d = orjson.loads(good())
    d["data"].update(data_changes)
    return d


def raw(offset: int, value: bytes | None, key: bytes | None = b"k", partition: int = 3) -> RawMessage:
    return RawMessage(TOPIC, partition, offset, key, value, 1714557600000 + offset)


def decode(*values: bytes | None, max_bytes: int = MAX) -> DecodedBatch:
    return decode_request_legs([raw(i, v) for i, v in enumerate(values)], max_bytes)


# ---- good records ----------------------------------------------------------------------------
def test_good_record_becomes_a_row_in_column_order():
    batch = decode(good())
    assert batch.invalid == []
    row = dict(zip(REQUEST_COLUMNS, batch.rows[0], strict=True))
    assert row == {
        "event_id": uuid.UUID(int=1),
        "event_time": datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC),  # converted to UTC
        "experiment_id": "", "phase": "", "correlation_id": "corr-1", "leg": "primary",
        "gateway": "edge-eu-1", "route": "/patients/{id}", "method": "GET", "backend": "patients",
        "status": 200, "latency_ms": 12.5, "request_bytes": 350, "response_bytes": 2400,
        "response_hash": "abc123", "error": "", "source": "/gateways/edge-eu-1",
    }
    assert row["event_time"].tzinfo is UTC


@pytest.mark.clickhouse
def test_columns_match_the_clickhouse_migrations(store):
    """The columns the decoder writes are those of the tables as every migration leaves them (a store
    migrated from scratch), not as the migration that created them wrote them."""
    # the column lists themselves: test_every_written_table_matches_its_column_constant
    described = {r[0]: r for r in store.query(f"DESCRIBE TABLE {store.database}.requests").result_rows}
    assert described["ingest_time"][1:3] == ("DateTime64(3)", "DEFAULT") and described["ingest_time"][3] == "now64(3)"
    assert "{ttl_clause}" in (SQL / "0002_requests.sql").read_text()
    for table in ("requests", "dead_letters"):
        ddl = store.scalar("SELECT create_table_query FROM system.tables WHERE database = {db:String} "
                           "AND name = {t:String}", parameters={"db": store.database, "t": table})
        assert "non_replicated_deduplication_window = 10000" in ddl, table


#: Every table the hub writes rows to -> (the column constant its writer names, the columns it leaves
#: to their DEFAULT). A column the store has and neither lists fails the test below.
WRITTEN_TABLES = {
    "requests": (REQUEST_COLUMNS, {"ingest_time"}),
    "dead_letters": (DEAD_LETTER_COLUMNS, set()),
    # event_time: MATERIALIZED from the row's own time (the day the TTL and partitions use)
    "otel_traces": (TRACE_COLUMNS, {"event_time"}),
    "otel_logs": (LOG_COLUMNS, {"TimestampTime", "event_time"}),
    **{table: (columns, {"event_time"}) for table, columns in METRIC_TABLES.values()},
    "shadow_pairs": (PAIR_COLUMNS, {"ingest_time"}),
    "alerts": (ALERT_COLUMNS, set()),
    "canary_verdicts": (VERDICT_COLUMNS, set()),
    "experiment_events": (PROJECTION_COLUMNS, set()),  # EVENT_COLUMNS and the projection's own
    "sink_ledger": (LEDGER_COLUMNS, {"written_at"}),
}


@pytest.mark.clickhouse
def test_every_written_table_matches_its_column_constant(store):
    """Each column constant the hub inserts with, against its table as every migration leaves it:
    a column only the store has (and that is not left to its default) and a column only the
    constant has are both named."""
    assert PROJECTION_COLUMNS[:len(EVENT_COLUMNS)] == EVENT_COLUMNS
    # every table a writer fills is compared (the migration runner's own record aside)
    unlisted = sorted(written_tables(store) - set(WRITTEN_TABLES) - {"schema_migrations"})
    assert not unlisted, (f"tables {unlisted} take rows but have no column constant in WRITTEN_TABLES of "
                          f"{__name__}: add each with the constant its writer inserts with")
    for table, (columns, defaulted) in WRITTEN_TABLES.items():
        assert_columns_stored(store, table, columns, defaulted=defaulted)


@pytest.mark.clickhouse
def test_a_column_only_the_store_or_only_the_constant_has_is_named(store):
    store.command(f"ALTER TABLE {store.database}.otel_logs ADD COLUMN ObservedTimestamp DateTime64(9)")
    with pytest.raises(AssertionError, match=r"otel_logs: the migrations create column\(s\) \['ObservedTimestamp'\] "
                                             r"that the code's column list does not write: add them"):
        assert_columns_stored(store, "otel_logs", LOG_COLUMNS, defaulted={"TimestampTime", "event_time"})
    with pytest.raises(AssertionError, match=r"sink_ledger: column\(s\) \['tenant'\] written by the code are "
                                             r"missing from the store.*new migration under schemas/clickhouse/"):
        assert_columns_stored(store, "sink_ledger", LEDGER_COLUMNS + ("tenant",))
    without_token = tuple(c for c in LEDGER_COLUMNS if c != "token")
    with pytest.raises(AssertionError, match=r"sink_ledger: column\(s\) \['token'\] are listed as left to "
                                             r"their default, but the store gives them none"):
        assert_columns_stored(store, "sink_ledger", without_token, defaulted={"token", "written_at"})


def test_defaults_and_envelope_fallbacks():
    minimal = {
        "specversion": "1.0", "id": "order-42", "source": "/gw", "type": RECORD_REQUEST_LEG,
        "experimentid": "exp-7", "experimentphase": "injection", "time": None,
        "data": {"correlation_id": "c", "leg": "shadow", "gateway": "g", "route": "/", "method": "POST",
                 "backend": "b", "status": 0, "latency_ms": 0, "event_time": "2024-05-01T10:00:00Z"},
    }
    row = dict(zip(REQUEST_COLUMNS, decode(orjson.dumps(minimal)).rows[0]))
    assert row["event_id"] == uuid.uuid5(EVENT_ID_NAMESPACE, "order-42")  # id is not a UUID
    assert (row["experiment_id"], row["phase"]) == ("exp-7", "injection")  # from the envelope
    assert (row["request_bytes"], row["response_bytes"], row["response_hash"], row["error"]) == (0, 0, "", "")
    assert row["latency_ms"] == 0.0 and row["status"] == 0
    # data wins over the envelope
    minimal["data"].update(experiment_id="exp-data", phase="recovery")
    row = dict(zip(REQUEST_COLUMNS, decode(orjson.dumps(minimal)).rows[0]))
    assert (row["experiment_id"], row["phase"]) == ("exp-data", "recovery")


def test_inlined_row_equals_to_row():
    values = [v for _, v in generate_request_legs(300, seed=3, start=START, experiment_id="e")]
    values.append(good(7, event_time=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-7)))))
    expected = [to_row(msgspec.json.decode(v, type=RequestLegEvent)) for v in values]
    assert decode(*values).rows == expected


# ---- bad records -----------------------------------------------------------------------------
BAD = [
    (b"<html>oops</html>", "not JSON: JSON is malformed: invalid character (byte 0)"),
    (good()[:-9], "not JSON: Input data was truncated"),
    (orjson.dumps(doc(status="200")), "schema: Expected int, got str - at $.data.status"),
    (orjson.dumps({k: v for k, v in orjson.loads(good()).items() if k != "source"}),
     "schema: Object missing required field source"),
    (orjson.dumps({**doc(), "data": {k: v for k, v in doc()["data"].items() if k != "correlation_id"}}),
     "schema: Object missing required field correlation_id - at $.data"),
    (orjson.dumps(doc(leg="mirror")), "schema: Invalid enum value 'mirror' - at $.data.leg"),
    (orjson.dumps(doc(status=600)), "schema: Expected int <= 599 - at $.data.status"),
    (orjson.dumps(doc(latency_ms=-1)), "schema: Expected float >= 0.0 - at $.data.latency_ms"),
    (orjson.dumps(doc(method="get")), "schema: Expected str matching regex '^[A-Z]{1,20}$' - at $.data.method"),
    (orjson.dumps(doc(event_time="2024-05-01T10:00:00")),
     "schema: Expected datetime with a timezone component - at $.data.event_time"),
    (orjson.dumps(doc(retries=2)), "schema: Object contains unknown field retries - at $.data"),
    (orjson.dumps({**doc(), "type": "dev.gamedayhub.fault.v1"}), "unknown type: 'dev.gamedayhub.fault.v1'"),
    (orjson.dumps({**doc(), "type": "dev.gamedayhub.other.v1", "data": {"anything": 1}}),
     "unknown type: 'dev.gamedayhub.other.v1'"),
    (orjson.dumps("a string"), "schema: Expected object, got str"),
    (b"", "empty value"),
    (None, "empty value"),
]


@pytest.mark.parametrize(("value", "reason"), BAD, ids=[r.split(" - ")[0] for _, r in BAD])
def test_each_bad_record_is_reported_and_its_neighbours_still_decode(value, reason):
    batch = decode_request_legs([raw(10, good(0)), raw(11, value), raw(12, good(1))], MAX)
    assert [r[0] for r in batch.rows] == [uuid.UUID(int=1), uuid.UUID(int=2)]
    [bad] = batch.invalid
    assert isinstance(bad, InvalidRecord)
    assert (bad.reason, bad.topic, bad.partition, bad.offset) == (reason, TOPIC, 3, 11)
    assert str(bad) == reason


def test_a_batch_record_decodes_every_event_and_dead_letters_only_the_bad_one():
    batch_value = b"[" + b",".join([good(0), orjson.dumps(doc(status="x")), good(1)]) + b"]"
    batch = decode_request_legs([raw(20, batch_value), raw(21, good(2))], MAX)
    assert [r[0] for r in batch.rows] == [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)]
    [bad] = batch.invalid
    assert (bad.offset, bad.index) == (20, 1)
    assert bad.reason == "schema: Expected int, got str - at $.data.status"
    letter = decode_dead_letter(to_dead_letter(bad, raw(20, batch_value)))
    assert letter.source_index == 1
    assert orjson.loads(base64.b64decode(letter.value))["data"]["status"] == "x"


def test_a_batch_that_is_not_a_json_array_is_one_dead_letter():
    batch = decode_request_legs([raw(5, b"[" + good(0)), raw(6, good(1))], MAX)
    assert len(batch.rows) == 1
    [bad] = batch.invalid
    assert (bad.offset, bad.index) == (5, -1) and bad.reason.startswith("not JSON")


def test_oversized_is_rejected_before_decoding():
    value = good()
    batch = decode(value, good(1), max_bytes=len(value) - 1)
    assert [i.reason for i in batch.invalid] == [f"oversized: {len(value)} bytes > {len(value) - 1}"] * 2
    assert batch.rows == []
    assert len(decode(value, max_bytes=len(value)).rows) == 1  # the limit itself is allowed


def test_reasons_are_short_even_for_huge_inputs():
    batch = decode(orjson.dumps({**doc(), "type": "x" * 10_000}), orjson.dumps(doc(leg="y" * 10_000)))
    assert all(len(i.reason) < 300 for i in batch.invalid) and len(batch.invalid) == 2
    assert batch.invalid[0].reason.startswith("unknown type: 'xxx")


def test_mixed_batch_keeps_order_and_coordinates():
    values = [good(0), b"{", good(1), None, orjson.dumps(doc(leg="x")), good(2)]
    batch = decode_request_legs([raw(100 + i, v, partition=7) for i, v in enumerate(values)], MAX)
    assert [r[0] for r in batch.rows] == [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)]
    assert [(i.partition, i.offset) for i in batch.invalid] == [(7, 101), (7, 103), (7, 104)]
    assert [i.reason.split(":")[0] for i in batch.invalid] == ["not JSON", "empty value", "schema"]


def test_empty_batch():
    batch = decode_request_legs([], MAX)
    assert (batch.rows, batch.invalid) == ([], [])


# ---- generator -------------------------------------------------------------------------------
def test_generator_output_decodes_completely_and_is_realistic():
    records = list(generate_request_legs(20_000, seed=11, start=START, experiment_id="exp-1"))
    assert len(records) == 20_000
    batch = decode_request_legs([raw(i, v, key=k) for i, (k, v) in enumerate(records)], MAX)
    assert batch.invalid == [] and len(batch.rows) == 20_000
    rows = [dict(zip(REQUEST_COLUMNS, r)) for r in batch.rows]
    assert all(r["experiment_id"] == "exp-1" for r in rows)
    assert all(k == r["correlation_id"].encode() for (k, _), r in zip(records, rows))
    legs = Counter(r["leg"] for r in rows)
    requests = legs["primary"] + legs["canary"]
    assert 0.07 < legs["shadow"] / requests < 0.13
    assert 0.03 < legs["canary"] / requests < 0.07
    # every shadow leg directly follows the primary leg of the same request
    for before, r in zip(rows, rows[1:]):
        if r["leg"] == "shadow":
            assert before["leg"] == "primary" and before["correlation_id"] == r["correlation_id"]
            assert before["route"] == r["route"] and r["event_time"] > before["event_time"]
    errors = sum(1 for r in rows if r["status"] >= 500 or r["status"] == 0) / len(rows)
    assert 0.01 < errors < 0.05
    assert len({r["gateway"] for r in rows}) >= 3 and len({r["route"] for r in rows}) >= 5
    latencies = sorted(r["latency_ms"] for r in rows if r["status"])
    median, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    assert 5 < median < 100 and p99 > 4 * median  # long right tail
    primaries = [r["event_time"] for r in rows if r["leg"] != "shadow"]
    assert primaries == sorted(primaries) and primaries[0] >= START
    span = (primaries[-1] - primaries[0]).total_seconds()
    assert 0.8 * len(primaries) / 1000 < span < 1.2 * len(primaries) / 1000  # ~1000 requests/s
    assert len({r["event_id"] for r in rows}) == len(rows)


def test_generator_is_deterministic_by_seed():
    a = list(generate_request_legs(500, seed=5, start=START))
    assert a == list(generate_request_legs(500, seed=5, start=START))
    assert a != list(generate_request_legs(500, seed=6, start=START))
    assert a[:100] == list(generate_request_legs(100, seed=5, start=START))
    assert list(generate_request_legs(0)) == []


def test_encode_event_round_trips():
    event = new_event(leg(), source="/gw", id="e-1", experimentid="x", time=START)
    data = encode_event(event)
    assert msgspec.json.decode(data, type=RequestLegEvent) == msgspec.json.decode(
        msgspec.json.encode(event), type=RequestLegEvent)
    assert b"null" not in data  # absent attributes are omitted, not null


# ---- dead letters ----------------------------------------------------------------------------
def test_dead_letter_round_trip():
    source = raw(42, b"\x00\xffnot json", key=b"corr-9", partition=2)
    invalid = decode_request_legs([source], MAX).invalid[0]
    when = datetime(2024, 5, 1, 10, 0, 1, 500000, tzinfo=UTC)
    data = to_dead_letter(invalid, source, dead_time=when)
    as_json = orjson.loads(data)
    assert as_json["reason"].startswith("not JSON: ")
    assert (as_json["source_topic"], as_json["source_partition"], as_json["source_offset"]) == (TOPIC, 2, 42)
    assert as_json["source_timestamp_ms"] == source.timestamp_ms
    assert as_json["dead_time"] == "2024-05-01T10:00:01.500000Z"
    letter = decode_dead_letter(data)
    assert base64.b64decode(letter.key) == b"corr-9"
    assert base64.b64decode(letter.value) == b"\x00\xffnot json"
    row = dead_letter_record_row(letter)
    assert row == dead_letter_row(invalid, source, dead_time=when)
    assert dict(zip(DEAD_LETTER_COLUMNS, row, strict=True)) == {
        "dead_time": when, "source_topic": TOPIC, "source_partition": 2, "source_offset": 42, "source_index": -1,
        "reason": invalid.reason, "key": letter.key, "value": letter.value,
    }


def test_dead_letter_of_absent_key_and_value():
    source = raw(5, None, key=None)
    invalid = decode_request_legs([source], MAX).invalid[0]
    letter = decode_dead_letter(to_dead_letter(invalid, source))
    assert (letter.key, letter.value, letter.reason) == (None, None, "empty value")
    assert letter.dead_time.tzinfo is not None
    assert abs((datetime.now(UTC) - letter.dead_time).total_seconds()) < 60
    assert dead_letter_record_row(letter)[6:] == ("", "")
