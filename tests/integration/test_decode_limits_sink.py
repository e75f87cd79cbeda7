"""Poison records through the worker's own sinks (``hub.pipeline.sink_specs``), against real Kafka
and chDB: a record nested 50,000 levels deep, an alert whose kind is a number, an oversized alert, a span
starting at 2^64-1 ns and a request leg in year 9999, each between good records. Each becomes a
dead letter with the decoder's reason; every good record is stored once; the sink stays healthy."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hub.pipeline import redactor_for, sink_specs
from hub.records.generate import generate_request_legs
from hub.runtime.fetch import KafkaRangeFetcher
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.sink import ExactlyOnceSink
from tests.fixtures_clickhouse import store_for
from tests.integration.test_sink_exactly_once import consume_all, produce

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

NOW = dt.datetime.now(dt.timezone.utc)


def _sink(settings, store, bootstrap, name: str, dlq: str) -> ExactlyOnceSink:
    [spec] = [s for s in sink_specs(settings, store=store) if s.name == name]
    return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, bootstrap, dlq, redactor=redactor_for(settings)),
                           KafkaRangeFetcher(bootstrap))


def _dead_letters(store, topic) -> list[tuple[int, int, str]]:
    return [tuple(r) for r in store.query(
        f"SELECT source_offset, source_index, reason FROM {store.database}.dead_letters "
        "WHERE source_topic = {t:String} ORDER BY source_offset, source_index", parameters={"t": topic}).result_rows]


def _run(hub_settings, kafka_bootstrap, make_topic, name: str, topic_setting: str, values: list[bytes],
         **overrides):
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    settings = hub_settings.with_overrides(kafka_bootstrap=kafka_bootstrap, **{topic_setting: topic}, **overrides)
    store = store_for(settings)
    produce(kafka_bootstrap, topic, [(b"k", v) for v in values], partition=0)
    sink = _sink(settings, store, kafka_bootstrap, name, dlq)
    sink.write(consume_all(kafka_bootstrap, topic, 1, len(values)))
    sink.flush()
    assert sink.health.state == "ok"
    sink.close()
    return store, _dead_letters(store, topic)


def test_request_legs_too_deep_or_in_year_9999_are_dead_lettered_and_their_neighbours_stored(
        hub_settings, kafka_bootstrap, make_topic):
    good = [v for _, v in generate_request_legs(10, seed=5)]
    future = json.loads(good[0])
    future["id"] = "leg-9999"
    future["data"]["event_time"] = "9999-12-31T23:59:59Z"
    deep = b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    batch = b"[" + good[8] + b"," + b"[" * 500 + b"]" * 500 + b"]"
    values = good[:4] + [deep] + good[4:8] + [json.dumps(future).encode(), batch, good[9]]
    store, letters = _run(hub_settings, kafka_bootstrap, make_topic, "requests", "topic_requests", values)
    assert store.scalar(f"SELECT count() FROM {store.database}.requests") == 10
    assert [(o, i, r.split(":")[0]) for o, i, r in letters] == [
        (4, -1, "too deeply nested"), (9, -1, "timestamp out of range"), (10, 1, "too deeply nested")]


def test_alerts_of_the_wrong_type_or_size_are_dead_lettered_and_their_neighbours_stored(
        hub_settings, kafka_bootstrap, make_topic):
    def alert(i, **fields):
        return json.dumps({"kind": "alert", "alert_id": f"a{i}", "experiment_id": "e", "status": "firing",
                           "time": NOW.isoformat(), **fields}).encode()

    values = [alert(0), alert(1, kind=5), alert(2), alert(3, message="x" * 100_000), alert(4, samples="many"),
              alert(5)]
    store, letters = _run(hub_settings, kafka_bootstrap, make_topic, "alerts", "topic_alerts", values,
                          max_record_bytes=50_000)
    assert sorted(r[0] for r in store.query(f"SELECT alert_id FROM {store.database}.alerts").result_rows) == \
        ["a0", "a2", "a5"]
    assert [(o, r.split(" - ")[0]) for o, _, r in letters] == [
        (1, "schema: Expected str, got int"), (3, f"oversized: {len(values[3])} bytes > 50000"),
        (4, "schema: Expected int | null, got str")]


def test_a_span_starting_at_2_64_minus_1_is_dead_lettered_and_its_neighbours_stored(
        hub_settings, kafka_bootstrap, make_topic):
    now_ns = int(NOW.timestamp()) * 10**9

    def spans(*starts):
        req = ExportTraceServiceRequest()
        ss = req.resource_spans.add().scope_spans.add()
        for i, start in enumerate(starts):
            s = ss.spans.add(name=f"s{i}", start_time_unix_nano=start, end_time_unix_nano=start)
            s.trace_id, s.span_id = bytes([i + 1] * 16), bytes([i + 1] * 8)
        return req.SerializeToString()

    values = [spans(now_ns), spans(now_ns, 2**64 - 1, now_ns + 1), spans(now_ns + 2)]
    store, letters = _run(hub_settings, kafka_bootstrap, make_topic, "spans", "topic_spans", values)
    assert store.scalar(f"SELECT count() FROM {store.database}.otel_traces") == 4
    [(offset, index, reason)] = letters
    assert (offset, index) == (1, -1)
    assert reason.startswith("timestamp out of range: span time 2554-07-21T23:34:33.709551615Z (accepted: from 90 "
                             "days ago (HUB_TTL_DAYS) to ")


def test_records_older_than_the_ttl_are_dead_lettered_not_counted_as_stored_and_alerts_are_kept(
        hub_settings, kafka_bootstrap, make_topic):
    """The table's TTL (HUB_TTL_DAYS) would drop a row dated before now - TTL as soon as it is stored."""
    good = [v for _, v in generate_request_legs(6, seed=7)]
    old = []
    for i, days in enumerate((120, 365 * 26)):
        doc = json.loads(good[i])
        doc["id"] = f"old-{i}"
        doc["data"]["event_time"] = (NOW - dt.timedelta(days=days)).isoformat()
        old.append(json.dumps(doc).encode())
    values = good[:3] + old[:1] + good[3:] + old[1:]
    store, letters = _run(hub_settings, kafka_bootstrap, make_topic, "requests", "topic_requests", values,
                          ttl_days=90)
    store.command(f"OPTIMIZE TABLE {store.database}.requests FINAL")  # lets the TTL drop what it drops
    assert store.scalar(f"SELECT count() FROM {store.database}.requests") == 6
    assert [(o, i) for o, i, _ in letters] == [(3, -1), (7, -1)]
    assert all(r.startswith("timestamp out of range: ") and r.endswith(
        "older than the store keeps (HUB_TTL_DAYS=90)") for _, _, r in letters)

    old_time = (NOW - dt.timedelta(days=120)).isoformat()
    alert = json.dumps({"kind": "alert", "alert_id": "a-old", "experiment_id": "e", "status": "firing",
                        "time": old_time}).encode()
    store, letters = _run(hub_settings, kafka_bootstrap, make_topic, "alerts", "topic_alerts", [alert],
                          ttl_days=90)
    assert letters == [] and store.scalar(f"SELECT count() FROM {store.database}.alerts") == 1
