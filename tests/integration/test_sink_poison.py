"""Poison at the sink, against real Kafka and chDB: rows the store refuses, batches spanning more
days than one insert may, dead letters larger than the broker takes, decoders that raise. Each
ends with its good neighbours stored exactly once, the bad ones dead-lettered with a reason, the
sink healthy, and a replay of the same offsets storing nothing twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

import pytest

from hub.abort.records import ALERT_COLUMNS
from hub.errors import RecoverableError
from hub.otel.decode import TRACE_COLUMNS
from hub.records.decode import REQUEST_COLUMNS, decode_dead_letter, decode_request_legs
from hub.records.generate import generate_request_legs
from hub.runtime.fetch import KafkaRangeFetcher
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.sink import ExactlyOnceSink, SinkSpec, write_with_retry
from tests.fixtures_clickhouse import store_for
from tests.integration.test_sink_exactly_once import consume_all, counts, produce

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@dataclass
class Batch:
    rows: list = field(default_factory=list)
    invalid: list = field(default_factory=list)


def alert_record(i: int, kind=None) -> bytes:
    return json.dumps({"time": "2026-01-02T03:04:05+00:00", "kind": "firing" if kind is None else kind,
                       "alert_id": f"a{i}", "experiment_id": "exp-1", "rule": "errors"}).encode()


def alert_row(record: dict) -> tuple:
    """An ``alerts`` row in ALERT_COLUMNS order, the values taken as they come."""
    values = {"time": dt.datetime.fromisoformat(record["time"]), "kind": record["kind"],
              "alert_id": record["alert_id"], "status": "firing", "experiment_id": record["experiment_id"],
              "rule": record["rule"], "threshold": 0.0, "samples": 0, "top_contributors": "[]",
              "example_request_ids": [], "attempts": 0, "outside_run": False}
    nullable = {"observed", "window_start", "window_end", "ok", "status_code", "latency_ms"}
    return tuple(values[c] if c in values else (None if c in nullable else "") for c in ALERT_COLUMNS)


def decode_alert_rows(messages) -> Batch:
    """Alert rows as they come, a number for ``kind`` included: the rows the store must refuse
    are made here, at the sink (the decoders refuse such records before they get this far)."""
    return Batch(rows=[alert_row(json.loads(m.value)) for m in messages])


def dead_letters(store, topic) -> list[tuple]:
    return [tuple(r) for r in store.query(
        f"SELECT source_offset, source_index, reason FROM {store.database}.dead_letters "
        "WHERE source_topic = {t:String} ORDER BY source_offset, source_index", parameters={"t": topic}).result_rows]


def alert_counts(store):
    return store.query(f"SELECT count(), uniqExact(alert_id) FROM {store.database}.alerts").result_rows[0]


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_row_the_store_refuses_is_dead_lettered_and_its_neighbours_are_stored_once(
        store, kafka_bootstrap, make_topic, pipelined):
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    produce(kafka_bootstrap, topic, [(b"k", alert_record(i, kind=5 if i == 6 else None)) for i in range(20)],
            partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 20)

    def make_sink():
        spec = SinkSpec("alerts", topic, "alerts", ALERT_COLUMNS, decode_alert_rows)
        return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, kafka_bootstrap, dlq),
                               KafkaRangeFetcher(kafka_bootstrap), pipelined=pipelined)

    sink = make_sink()
    sink.write(messages[:12])
    sink.write(messages[12:])
    sink.flush()
    assert alert_counts(store) == (19, 19)
    [(offset, index, reason)] = dead_letters(store, topic)
    assert offset == 6 and index == -1
    assert reason.startswith("rejected by the store:") and "'int' object has no attribute 'encode'" in reason
    assert sink.health.state == "ok" and sink.health.problems() == []
    assert sink.stats.stored == 19 and sink.stats.invalid_by_reason == {"rejected by the store": 1}
    published = [decode_dead_letter(m.value) for m in consume_all(kafka_bootstrap, dlq, 1, 1)]
    assert [(p.source_topic, p.source_offset) for p in published] == [(topic, 6)]
    sink.close()
    # Another worker takes the partition over: it writes the ledger's two last chunks again
    # (offsets 0-11 and 12-19, the refused row among them) with the same tokens.
    second = make_sink()
    second.write(messages[5:])
    second.flush()
    assert second.stats.recovered_batches == 2
    assert alert_counts(store) == (19, 19)
    assert len(dead_letters(store, topic)) == 1
    second.close()


def span_row(i: int, timestamp_ns: int) -> tuple:
    return (timestamp_ns, f"{i:032x}", f"{i:016x}", "", "", "GET /", "Server", "svc", {}, "", "", {}, 1000,
            "Ok", "", [], [], [], [], [], [], [], "", "")


def test_a_span_out_of_the_columns_range_is_dead_lettered_and_the_spans_after_it_are_stored(
        store, kafka_bootstrap, make_topic):
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    now_ns = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1e9)
    produce(kafka_bootstrap, topic, [(b"k", str(i).encode()) for i in range(30)], partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 30)

    def decode(ms):
        # the record at offset 17 starts at 2^64-1 ns
        return Batch(rows=[span_row(m.offset, 2**64 - 1 if m.offset == 17 else now_ns + m.offset) for m in ms])

    spec = SinkSpec("spans", topic, "otel_traces", TRACE_COLUMNS, decode)
    sink = ExactlyOnceSink(store, spec, DeadLetterPublisher(store, kafka_bootstrap, dlq),
                           KafkaRangeFetcher(kafka_bootstrap), pipelined=True)
    for start in range(0, 30, 10):
        sink.write(messages[start:start + 10])
    sink.flush()
    stored = store.query(f"SELECT count(), uniqExact(SpanId) FROM {store.database}.otel_traces").result_rows[0]
    assert stored == (29, 29)
    [(offset, _, reason)] = dead_letters(store, topic)
    assert offset == 17 and "value out of range" in reason
    assert sink.health.state == "ok"
    sink.close()


def legs_on_days(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """``count`` valid request legs, the n-th one n days ago."""
    now = dt.datetime.now(dt.timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    out = []
    for n, (key, value) in enumerate(generate_request_legs(count, seed=seed)):
        event = json.loads(value)
        stamp = (now - dt.timedelta(days=n)).isoformat().replace("+00:00", "Z")
        event["time"] = event["data"]["event_time"] = stamp
        out.append((key, json.dumps(event).encode()))
    return out


def test_101_legs_on_101_days_in_one_batch_are_all_stored_once(hub_settings, kafka_bootstrap, make_topic):
    store = store_for(hub_settings.with_overrides(ttl_days=400))  # the oldest leg outlives the TTL
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, legs_on_days(101, seed=31), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 101)
    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, lambda ms: decode_request_legs(ms, 100_000))

    def make_sink():
        return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, kafka_bootstrap, topic + ".dlq"),
                               KafkaRangeFetcher(kafka_bootstrap), pipelined=True)

    sink = make_sink()
    sink.write(messages)
    sink.flush()
    assert counts(store) == (101, 101)
    days = store.scalar(f"SELECT uniqExact(toDate(event_time)) FROM {store.database}.requests")
    assert days == 101
    assert dead_letters(store, topic) == [] and sink.health.state == "ok"
    sink.close()
    # The same offsets written again by the partition's next owner: nothing twice.
    again = make_sink()
    again.write(messages)
    again.flush()
    assert again.stats.recovered_batches == 1 and counts(store) == (101, 101)
    again.close()


def test_the_dead_letter_of_an_oversized_record_is_published_cut_and_the_next_batch_is_stored(
        store, kafka_bootstrap, make_topic):
    max_bytes = 1_000_000
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    good = list(generate_request_legs(20, seed=41))
    big = b'{"pad":"' + b"x" * (max_bytes + 1 - 10) + b'"}'
    assert len(big) == max_bytes + 1
    produce(kafka_bootstrap, topic, good[:5] + [(b"big", big)] + good[5:10], partition=0)
    produce(kafka_bootstrap, topic, good[10:], partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 21)
    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, lambda ms: decode_request_legs(ms, max_bytes))

    def make_sink():
        return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, kafka_bootstrap, dlq),
                               KafkaRangeFetcher(kafka_bootstrap), pipelined=True)

    sink = make_sink()
    sink.write(messages[:11])
    sink.write(messages[11:])
    sink.flush()
    assert counts(store) == (20, 20)
    [letter] = [decode_dead_letter(m.value) for m in consume_all(kafka_bootstrap, dlq, 1, 1)]
    assert letter.source_topic == topic and letter.source_partition == 0 and letter.source_offset == 5
    assert letter.reason.startswith("oversized")
    assert f"payload truncated: {len(big)} bytes, sha256 {hashlib.sha256(big).hexdigest()}" in letter.reason
    assert 0 < len(letter.value) < 1024 * 1024
    assert [r[0] for r in dead_letters(store, topic)] == [5]
    sink.close()
    # A restart with that chunk among the partition's two last ledger entries: it is written
    # (and its dead letter published) again, and later batches go on.
    more = list(generate_request_legs(5, seed=42))
    produce(kafka_bootstrap, topic, more, partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 26)
    again = make_sink()
    again.write(messages[11:])
    again.flush()
    assert again.stats.recovered_batches == 2
    assert counts(store) == (25, 25)
    assert [r[0] for r in dead_letters(store, topic)] == [5]
    again.close()


@pytest.mark.parametrize("step", ["decode", "place"])
def test_a_decoder_or_placement_that_raises_on_one_record_dead_letters_that_record_only(
        store, kafka_bootstrap, make_topic, step):
    topic, dlq = make_topic(partitions=2), make_topic(partitions=1)
    good = list(generate_request_legs(40, seed=51))
    produce(kafka_bootstrap, topic, good[:10] + [(b"k", b'{"boom": true}')] + good[10:20], partition=0)
    produce(kafka_bootstrap, topic, good[20:], partition=1)
    # as a consumer hands them over: each batch holds both partitions
    messages = sorted(consume_all(kafka_bootstrap, topic, 2, 41), key=lambda m: (m.offset, m.partition))

    def explode(values):
        if any(b"boom" in v for v in values):
            raise RecursionError("maximum recursion depth exceeded while decoding")

    def decode(ms):
        if step == "decode":
            explode([m.value for m in ms])
        batch = decode_request_legs(ms, 100_000)
        if step == "place":
            batch.invalid = [i for i in batch.invalid if i.offset != 10 or i.partition != 0]
            batch.rows.extend([("boom",)] if any(b"boom" in m.value for m in ms) else [])
        return batch

    def place(batches):
        for batch in batches:
            explode([str(row[0]).encode() for row in batch.rows])
        return batches

    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, decode, place=place if step == "place" else None)

    def make_sink():
        return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, kafka_bootstrap, dlq),
                               KafkaRangeFetcher(kafka_bootstrap), pipelined=True)

    sink = make_sink()
    for start in range(0, 41, 15):
        sink.write(messages[start:start + 15])
    sink.flush()
    assert counts(store) == (40, 40)
    [(offset, index, reason)] = dead_letters(store, topic)
    assert (offset, index) == (10, -1)
    assert reason.startswith(f"{'decode' if step == 'decode' else 'placement'} failed: RecursionError")
    assert sink.health.state == "ok"
    sink.close()
    # A restart replaying the chunks reaches the same result.
    again = make_sink()
    again.write(messages)
    again.flush()
    assert counts(store) == (40, 40) and len(dead_letters(store, topic)) == 1
    again.close()


class BrokerAwayOnce:
    """The real dead-letter publisher, whose first publication finds the broker away."""

    def __init__(self, publisher):
        self.publisher = publisher
        self.failed = False

    def publish(self, invalid, raws, token):
        if not self.failed:
            self.failed = True
            raise RecoverableError("dead-letter publish failed: broker away")
        return self.publisher.publish(invalid, raws, token)


def test_a_write_retried_after_the_refused_rows_were_isolated_stores_nothing_twice(
        store, kafka_bootstrap, make_topic):
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    produce(kafka_bootstrap, topic, [(b"k", alert_record(i, kind=7 if i in (3, 11) else None)) for i in range(16)],
            partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 16)
    spec = SinkSpec("alerts", topic, "alerts", ALERT_COLUMNS, decode_alert_rows)
    # Pipelined: the insert thread retries the rows step with the batch it already decoded.
    sink = ExactlyOnceSink(store, spec, BrokerAwayOnce(DeadLetterPublisher(store, kafka_bootstrap, dlq)),
                           KafkaRangeFetcher(kafka_bootstrap), pipelined=True)
    write_with_retry(sink, messages, sleep=lambda _: None)
    sink.flush()
    sink.close()
    assert sink.dead_letters.failed
    assert alert_counts(store) == (14, 14)
    assert [r[:2] for r in dead_letters(store, topic)] == [(3, -1), (11, -1)]


class RowsFailOnce:
    """The real store, whose rows insert of the chunk starting at ``first`` raises an unexpected
    error once (a bug in a step, not an outage)."""

    def __init__(self, store, first):
        self._store = store
        self.first = first
        self.failed = False
        self.database = store.database

    def insert(self, table, rows, columns, token=None):
        if not self.failed and not table.endswith(".sink_ledger") and token \
                and token.rsplit(":", 1)[1].startswith(f"{self.first}-"):
            self.failed = True
            raise RuntimeError("an unexpected error in the insert step")
        return self._store.insert(table, rows, columns, token=token)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_a_pipelined_batch_whose_insert_raised_is_written_again_by_the_same_sink(store, kafka_bootstrap, make_topic):
    # The agent writes the batch again after an unexpected error (it never dies); the sink must
    # not take the batch that failed in its insert thread as stored meanwhile.
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(1500, seed=71), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 1500)
    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, lambda ms: decode_request_legs(ms, 100_000))
    sink = ExactlyOnceSink(RowsFailOnce(store, first=500), spec,
                           DeadLetterPublisher(store, kafka_bootstrap, topic + ".dlq"),
                           KafkaRangeFetcher(kafka_bootstrap), pipelined=True)
    sink.write(messages[:500])
    sink.write(messages[500:900])       # its rows insert raises in the insert thread
    with pytest.raises(RuntimeError):
        sink.write(messages[900:1200])  # entered in the ledger, then the failure surfaces
    sink.write(messages[900:1200])      # the agent's second try
    sink.write(messages[1200:])
    sink.flush()
    assert counts(store) == (1500, 1500)
    sink.close()
