"""The whole path: records on Kafka, the Faust worker, rows in the embedded ClickHouse, answers over HTTP."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request

import pytest

from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

COUNT = "SELECT count() FROM hub.requests"


def test_records_flow_from_kafka_to_queryable_rows(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        send_records(kafka_bootstrap, worker.settings.topic_requests, generate_request_legs(20_000, seed=5))
        assert worker.wait_for(COUNT, 20_000, timeout=90) == 20_000
        legs = dict(worker.sql("SELECT leg, count() FROM hub.requests GROUP BY leg"))
        assert legs["primary"] > legs.get("shadow", 0) > 0
        status = worker.stack.api("/v1/status")
        assert status["sink"]["requests"]["stored"] == 20_000


def test_malformed_record_lands_in_dead_letters_with_reason_and_offset_and_later_records_are_stored(
        tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_PARTITIONS="1") as worker:
        good = list(generate_request_legs(200, seed=6))
        records = good[:100] + [(b"bad", b"{not json at all")] + good[100:]
        send_records(kafka_bootstrap, worker.settings.topic_requests, records)
        assert worker.wait_for(COUNT, 200, timeout=90) == 200
        assert worker.wait_for("SELECT count() FROM hub.dead_letters", 1, timeout=30) == 1
        offset, reason, topic = worker.sql(
            "SELECT source_offset, reason, source_topic FROM hub.dead_letters")[0]
        assert offset == 100 and topic == worker.settings.topic_requests
        assert reason.startswith("not JSON")
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(worker.settings.topic_dlq, bootstrap_servers=kafka_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=10_000)
        letters = [json.loads(m.value) for m in consumer]
        consumer.close()
        assert [(d["source_offset"], d["reason"][:8]) for d in letters] == [(100, "not JSON")]
        metrics = worker.stack.api("/v1/status")["sink"]["requests"]
        assert metrics["invalid_by_reason"] == {"not JSON": 1}
        prometheus = urllib.request.urlopen(worker.settings.http_url + "/metrics").read().decode()
        assert 'hub_dlq_records{reason="not JSON",sink="requests"} 1' in prometheus
        # where the requests sink's time went, per step of a write
        steps = {"decode", "place", "ledger", "after_ledger", "insert", "after_store"}
        assert set(metrics["phase_seconds"]) == steps
        for step in steps:
            assert f'hub_sink_step_seconds{{sink="requests",step="{step}"}}' in prometheus


def test_worker_killed_three_times_while_100000_records_flow_stores_each_exactly_once(tmp_path, kafka_bootstrap):
    total = 100_000
    worker = WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_SINK_BATCH_MAX="5000")
    topic = worker.settings.topic_requests
    sent = {}

    def produce() -> None:
        records = generate_request_legs(total, seed=7)

        def paced():
            for i, record in enumerate(records):
                if i and i % 5_000 == 0:
                    time.sleep(0.6)  # about 12 s of steady traffic
                yield record

        sent["count"], _ = send_records(kafka_bootstrap, topic, paced())

    producer = threading.Thread(target=produce)
    producer.start()
    rng = random.Random(11)
    kills = 0
    try:
        for _ in range(3):
            # Kill once the worker has stored something new, at a random instant mid-stream.
            before = worker.sql(COUNT)[0][0]
            deadline = time.monotonic() + 60
            while worker.sql(COUNT)[0][0] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.8))
            worker.kill()
            kills += 1
            worker.launch()
        producer.join(120)
        assert sent.get("count") == total
        worker.wait_for(COUNT, total, timeout=180)
        time.sleep(2)  # anything still in flight would show up as a duplicate now
        count, distinct = worker.sql("SELECT count(), uniqExact(event_id) FROM hub.requests")[0]
        recovered = worker.stack.api("/v1/status")["sink"]["requests"]
    finally:
        producer.join(120)
        worker.stop()
    assert kills == 3
    assert (count, distinct) == (total, total)
    # the last start re-checked the ledger's last chunks of its partitions (the kill may have cut
    # one short) and found nothing invalid in 100,000 well-formed records
    assert recovered["recovered_batches"] >= 1 and recovered["invalid"] == 0, recovered
    assert recovered["stored"] <= total
