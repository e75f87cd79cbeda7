"""``shadow_pairs`` holds one row per pair_id, although a pair can be published twice.

The stream pairing agent keeps its windows in memory, so a worker that crashes pairs its last
stored chunk of legs again when it restarts and publishes those pairs a second time (same
pair_id). The pairs sink drops a pair already stored from another record (``hub.shadow.dedupe``),
and a chunk of pairs that is itself written again after a crash keeps its rows.

- the sink alone, real broker and engine, a crash at each step of a chunk: every pair once, from
  its first publication;
- a real worker SIGKILLed twice while legs flow and are paired: duplicates were published, none
  is stored, and every stored pair is a real request's.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from hub.errors import StoreUnavailable
from hub.pipeline import sink_specs
from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.runtime.fetch import KafkaRangeFetcher
from hub.shadow.pairing import LegView, make_pair
from hub.shadow.records import encode_pair
from hub.storage.dead_letters import DeadLetterPublisher
from hub.storage.sink import ExactlyOnceSink
from hub.testing import WorkerProcess
from tests.integration.test_gateway import read_topic
from tests.integration.test_sink_exactly_once import CrashAfter, consume_all, produce

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def pair_record(cid: str, i: int) -> tuple[bytes, bytes]:
    t = T0 + timedelta(milliseconds=10 * i)
    primary = LegView(cid, "primary", "gw", "/r", "GET", "v1", 200, 10.0, t, "aa")
    shadow = LegView(cid, "shadow", "gw", "/r", "GET", "v2", 200, 12.0, t, "bb" if i % 3 == 0 else "aa")
    return cid.encode(), encode_pair(make_pair(primary, shadow), "/hub/pairing")


def pairs_sink(store, settings, bootstrap, topic):
    settings = settings.with_overrides(topic_pairs=topic)
    spec = next(s for s in sink_specs(settings, store=store) if s.name == "pairs")
    return ExactlyOnceSink(store, spec, DeadLetterPublisher(store, bootstrap, topic + ".dlq"),
                           KafkaRangeFetcher(bootstrap))


@pytest.mark.parametrize("crash_after_inserts", [0, 1, 2])
def test_the_pairs_sink_stores_each_pair_once_across_republication_and_a_crash_at_each_step(
        store, hub_settings, kafka_bootstrap, make_topic, crash_after_inserts):
    # insert 0 = ledger entry, 1 = rows: a crash before, between or after them
    topic = make_topic(partitions=1)
    first_publication = [pair_record(f"c{i}", i) for i in range(40)]                    # offsets 0-39
    again = [pair_record(f"c{i}", i) for i in range(10, 20)]                            # offsets 40-49
    more = [pair_record(f"c{i}", i) for i in (40, 41, 41, 42, 15, 43)]                  # offsets 50-55
    produce(kafka_bootstrap, topic, first_publication + again + more, partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 56)
    first = pairs_sink(store, hub_settings, kafka_bootstrap, topic)
    first.write(messages[:25])
    first.store = CrashAfter(store, crash_after_inserts)
    try:
        first.write(messages[25:48])  # the chunk that holds p25-p39 and the first republished pairs
    except StoreUnavailable:
        pass
    # a new worker: redelivery from an older commit, other chunk boundaries; it recovers the ledger's last chunk
    second = pairs_sink(store, hub_settings, kafka_bootstrap, topic)
    second.write(messages[20:45])
    second.write(messages[45:])
    db = store.database
    assert store.query(f"SELECT count(), uniqExact(pair_id) FROM {db}.shadow_pairs").result_rows == [(44, 44)]
    # each pair is its first publication
    rows = store.query(f"SELECT correlation_id, source_offset FROM {db}.shadow_pairs").result_rows
    assert sorted(rows) == sorted([(f"c{i}", i) for i in range(40)] + [("c40", 50), ("c41", 51), ("c42", 53),
                                                                       ("c43", 55)])
    assert store.scalar(f"SELECT countIf(outcome = 'body_mismatch') FROM {db}.shadow_pairs") == \
        sum(1 for i in list(range(40)) + [40, 41, 42, 43] if i % 3 == 0)


@pytest.mark.slow
def test_worker_killed_while_legs_are_paired_stores_no_pair_twice(tmp_path, kafka_bootstrap):
    total = 40_000
    worker = WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_SINK_BATCH_MAX="2000")
    sent: dict = {}

    def produce_legs() -> None:
        def paced():
            for i, record in enumerate(generate_request_legs(total, seed=13, rate_per_second=2000.0)):
                if i and i % 2_000 == 0:
                    time.sleep(0.5)  # about 10 s of steady traffic
                yield record

        sent["count"], _ = send_records(kafka_bootstrap, worker.settings.topic_requests, paced(),
                                        events_per_record=50)

    pairs = "SELECT count() FROM hub.shadow_pairs"
    producer = threading.Thread(target=produce_legs)
    producer.start()
    rng = random.Random(17)
    kills = 0
    try:
        for _ in range(2):
            # SIGKILL once the worker has paired and stored something new, at a random instant
            before = worker.sql(pairs)[0][0]
            deadline = time.monotonic() + 90
            while worker.sql(pairs)[0][0] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.6))
            worker.kill()
            kills += 1
            worker.launch()
        producer.join(180)
        assert sent.get("count") == total
        assert worker.wait_for("SELECT count() FROM hub.requests", total, timeout=180) == total
        # pairs settle: the count stays put for a few seconds
        last, stable_since = None, time.monotonic()
        while time.monotonic() - stable_since < 4.0:
            now = worker.sql(pairs)[0][0]
            if now != last:
                last, stable_since = now, time.monotonic()
            time.sleep(0.25)
        count, distinct, requests = worker.sql(
            "SELECT count(), uniqExact(pair_id), uniqExact(correlation_id) FROM hub.shadow_pairs")[0]
        invented = worker.sql("SELECT count() FROM hub.shadow_pairs WHERE correlation_id NOT IN "
                              "(SELECT correlation_id FROM hub.requests WHERE leg = 'shadow')")[0][0]
        shadowed = worker.sql("SELECT uniqExact(correlation_id) FROM hub.requests WHERE leg = 'shadow'")[0][0]
        recovered = worker.stack.api("/v1/status")["sink"]["requests"]
    finally:
        producer.join(180)
        worker.stop()
    # what the pairs topic received: some pairs more than once (the restarted worker paired its last
    # chunks of legs again), which is what the store must not show
    # (the stream pairer sends a chunk's pairs as CloudEvents batch records, one per partition)
    published = [event["id"] for m in read_topic(kafka_bootstrap, worker.settings.topic_pairs, 10 ** 9, timeout=15)
                 for event in _events(json.loads(m.value))]
    print(f"pairs published {len(published)}, distinct {len(set(published))}, stored {count}, "
          f"shadowed requests {shadowed}, requests sink after the last restart {recovered}")
    assert kills == 2
    assert len(published) > len(set(published)), "no pair was published twice: the crash did not exercise this"
    assert count == distinct == requests == len(set(published)) > 0
    assert invented == 0 and count <= shadowed


def _events(value) -> list:
    """The CloudEvents of a record: a batch (JSON array) or a single event."""
    return value if isinstance(value, list) else [value]
