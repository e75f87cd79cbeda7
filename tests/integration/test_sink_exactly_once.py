"""The sink stores each record exactly once, across crashes at every step, against real Kafka and chDB."""

from __future__ import annotations

import json
import threading

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from hub.errors import StoreUnavailable
from hub.records.decode import REQUEST_COLUMNS, RawMessage, decode_request_legs
from hub.records.generate import generate_request_legs
from hub.runtime.fetch import KafkaRangeFetcher
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.sink import ExactlyOnceSink, SinkSpec

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def produce(bootstrap, topic, pairs, partition=None):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for key, value in pairs:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


def consume_all(bootstrap, topic, partitions, expected):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out = []
    while len(out) < expected:
        batch = consumer.poll(timeout_ms=2000)
        assert batch, f"only {len(out)} of {expected} records came back"
        for records in batch.values():
            out.extend(RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in records)
    consumer.close()
    return sorted(out, key=lambda m: (m.partition, m.offset))


class CrashAfter:
    """Wraps the real store and raises once a given number of inserts went through (a crash point)."""

    def __init__(self, store, inserts_before_crash):
        self._store = store
        self.remaining = inserts_before_crash
        self.database = store.database

    def insert(self, *args, **kwargs):
        if self.remaining == 0:
            raise StoreUnavailable("crash")
        self.remaining -= 1
        return self._store.insert(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._store, name)


def make_sink(store, bootstrap, topic, dlq_topic):
    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, lambda ms: decode_request_legs(ms, 100_000))
    return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, bootstrap, dlq_topic), KafkaRangeFetcher(bootstrap))


def counts(store):
    return store.query(f"SELECT count(), uniqExact(event_id) FROM {store.database}.requests").result_rows[0]


def test_every_record_stored_once_in_offset_chunks(store, kafka_bootstrap, make_topic):
    topic = make_topic(partitions=2)
    produce(kafka_bootstrap, topic, generate_request_legs(3000, seed=1))
    messages = consume_all(kafka_bootstrap, topic, 2, 3000)
    sink = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    for start in range(0, len(messages), 700):
        sink.write(messages[start:start + 700])
    assert counts(store) == (3000, 3000)
    # A full redelivery (consumer restarted from an old commit) stores nothing more.
    sink.write(messages)
    assert counts(store) == (3000, 3000)
    assert sink.stats.skipped == 3000


@pytest.mark.parametrize("crash_after_inserts", [0, 1, 2])
def test_crash_at_each_step_of_a_chunk_then_redelivery_with_other_boundaries(
        store, kafka_bootstrap, make_topic, crash_after_inserts):
    # insert 0 = ledger entry, 1 = rows; a crash before, between or after them.
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(2000, seed=2), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 2000)
    first = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    first.write(messages[:500])
    first.store = CrashAfter(store, crash_after_inserts)
    try:
        first.write(messages[500:1200])
    except StoreUnavailable:
        pass
    # A new worker: the committed offset may lag (redelivery from 300) and batches differ.
    second = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    second.write(messages[300:900])
    second.write(messages[900:])
    assert counts(store) == (2000, 2000)


def test_malformed_records_go_to_the_dead_letter_topic_and_table_and_later_records_are_stored(
        store, kafka_bootstrap, make_topic):
    topic = make_topic(partitions=1)
    dlq = make_topic(partitions=1)
    good = list(generate_request_legs(20, seed=3))
    bad = [(b"k", b"{not json"), (b"k", json.dumps({"specversion": "1.0"}).encode())]
    produce(kafka_bootstrap, topic, good[:10] + bad + good[10:], partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 22)
    sink = make_sink(store, kafka_bootstrap, topic, dlq)
    sink.write(messages)
    assert counts(store) == (20, 20)
    letters = store.query(
        f"SELECT source_offset, reason FROM {store.database}.dead_letters ORDER BY source_offset").result_rows
    assert [r[0] for r in letters] == [10, 11]
    assert letters[0][1].startswith("not JSON")
    assert letters[1][1].startswith("schema")
    dead = consume_all(kafka_bootstrap, dlq, 1, 2)
    payloads = [json.loads(m.value) for m in dead]
    assert {p["source_offset"] for p in payloads} == {10, 11}
    assert all(p["source_topic"] == topic and p["reason"] for p in payloads)


class FailRowsOfChunk:
    """Wraps the real store: the rows insert of the chunk whose token starts at ``first`` fails
    (not a store outage: the insert thread gives up, as when the process dies mid-insert)."""

    def __init__(self, store, first):
        self._store = store
        self.first = first
        self.database = store.database
        self.ledger_inserts = 0

    def insert(self, table, rows, columns, token=None):
        if table.endswith(".sink_ledger"):
            self.ledger_inserts += 1
        elif token and token.rsplit(":", 1)[1].startswith(f"{self.first}-"):
            raise RuntimeError("the process died during this insert")
        return self._store.insert(table, rows, columns, token=token)

    def __getattr__(self, name):
        return getattr(self._store, name)


def make_pipelined_sink(store, bootstrap, topic):
    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, lambda ms: decode_request_legs(ms, 100_000))
    return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, bootstrap, topic + ".dlq"),
                           KafkaRangeFetcher(bootstrap), pipelined=True)


def test_pipelined_sink_a_batch_entered_while_the_one_before_was_still_inserting_is_recovered(
        store, kafka_bootstrap, make_topic):
    # The pipelined sink enters batch B+1 in the ledger while batch B's rows are being inserted.
    # Here B's insert dies, so the ledger's two last entries (B and B+1) have no rows: the next
    # owner of the partition must re-insert both, not only the last one.
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(1500, seed=7), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 1500)
    first = make_pipelined_sink(FailRowsOfChunk(store, first=500), kafka_bootstrap, topic)
    first.write(messages[:500])          # ledger A, rows of A inserted in the background
    first.write(messages[500:900])       # ledger B; waits for A; B's insert starts and dies
    with pytest.raises(RuntimeError):
        first.write(messages[900:1200])  # ledger C is written, then B's failure surfaces
    first.close()
    assert counts(store) == (500, 500)
    ledger = store.query(f"SELECT first_offset, last_offset FROM {store.database}.sink_ledger "
                         "WHERE topic = {t:String} ORDER BY first_offset", parameters={"t": topic}).result_rows
    assert [tuple(r) for r in ledger] == [(0, 499), (500, 899), (900, 1199)]
    # Another worker takes the partition over; Kafka redelivers from an older commit.
    second = make_pipelined_sink(store, kafka_bootstrap, topic)
    second.write(messages[400:1000])
    second.write(messages[1000:])
    second.flush()
    assert counts(store) == (1500, 1500)


def test_pipelined_sink_stores_every_batch_once_flushed_with_one_ledger_entry_per_chunk(store, kafka_bootstrap, make_topic):
    topic = make_topic(partitions=3)
    produce(kafka_bootstrap, topic, generate_request_legs(3000, seed=8))
    # interleaved as a consumer hands them over: every batch holds all three partitions
    messages = sorted(consume_all(kafka_bootstrap, topic, 3, 3000), key=lambda m: (m.offset, m.partition))
    counting = FailRowsOfChunk(store, first=-1)  # fails nothing; counts ledger inserts
    sink = make_pipelined_sink(counting, kafka_bootstrap, topic)
    for start in range(0, 3000, 1000):
        sink.write(messages[start:start + 1000])
    sink.flush()
    assert counts(store) == (3000, 3000)
    assert sink.stats.stored == 3000
    # One ledger insert per chunk (its first offset's claim), one entry each.
    assert counting.ledger_inserts == 9
    entries = store.query(f"SELECT count(), uniqExact(partition) FROM {store.database}.sink_ledger "
                          "WHERE topic = {t:String}", parameters={"t": topic}).result_rows[0]
    assert entries == (9, 3)
    sink.close()


def test_pipelined_sink_acknowledges_a_batch_before_its_timeline_wait_and_places_it_in_the_insert_thread(
        store, kafka_bootstrap, make_topic):
    # Placement may wait for the experiment timelines to cover the batch (HUB_CORRELATION_LATENESS).
    # The pipelined sink returns once the batch is in the ledger, so the agent acknowledges it and
    # gathers the next one during that wait; the placement, the rollups and the rows follow in the
    # sink's insert thread.
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(200, seed=9), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 200)
    released = threading.Event()
    placed_in, announced = [], []

    def place(batches):
        placed_in.append(threading.current_thread().name)
        assert released.wait(30), "the placement was never released"
        return batches

    spec = SinkSpec("requests", topic, "requests", REQUEST_COLUMNS, lambda ms: decode_request_legs(ms, 100_000),
                    place=place, after_ledger=lambda token, decoded: announced.append((token, len(decoded.rows))))
    sink = ExactlyOnceSink(store, spec, DeadLetterPublisher(store, kafka_bootstrap, topic + ".dlq"),
                           KafkaRangeFetcher(kafka_bootstrap), pipelined=True)
    try:
        assert sink.write(messages) == 200  # returns while the placement still waits
        ledger = store.query(f"SELECT first_offset, last_offset FROM {store.database}.sink_ledger "
                             "WHERE topic = {t:String}", parameters={"t": topic}).result_rows
        assert [tuple(r) for r in ledger] == [(0, 199)]
        assert announced == [] and counts(store) == (0, 0)
        released.set()
        sink.flush()
        assert announced == [(f"requests:{topic}:0:0-199", 200)]
        assert counts(store) == (200, 200)
        assert placed_in == ["sink-requests-insert_0"]
    finally:
        released.set()
        sink.close()


def test_a_chunk_in_the_ledger_but_not_stored_is_stored_when_its_partition_is_assigned_with_no_new_record(
        store, kafka_bootstrap, make_topic):
    # A crash between a chunk's ledger entry and its rows, and then nothing more on the partition:
    # the new owner stores the chunk on assignment, not at a next record that may never come.
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(600, seed=3), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 600)
    first = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    first.write(messages[:200])
    first.store = CrashAfter(store, 1)  # the ledger entry lands, the rows do not
    with pytest.raises(StoreUnavailable):
        first.write(messages[200:])
    assert counts(store) == (200, 200)
    second = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    second.recover_assigned([0])
    assert counts(store) == (600, 600)
