"""Fuzzing the ingest topics: thousands of broken records among good ones, none lost, none crashing.

Every malformed, truncated, wrongly typed or oversized record must land in the dead-letter
table and topic exactly once with a reason; every good record must be stored; the worker must
stay up and no partition may stall behind a bad record.
"""

from __future__ import annotations

import json
import random

import pytest
from kafka import KafkaConsumer

from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

MAX_BYTES = 20_000


def mutations(rng: random.Random, good: bytes) -> bytes:
    """One broken record made from a good one, in one of many ways."""
    doc = json.loads(good)
    kind = rng.randrange(12)
    if kind == 0:
        return good[: rng.randrange(1, len(good) - 1)]                      # truncated
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))  # noise
    if kind == 2:
        return b""                                                           # empty
    if kind == 3:
        return b"{" + b"x" * MAX_BYTES + b"}"                                # oversized
    if kind == 4:
        doc["data"]["status"] = rng.choice(["200", None, 1000, -1, 2.5, [200]])  # wrong type/range
    elif kind == 5:
        del doc["data"][rng.choice(["correlation_id", "leg", "gateway", "route", "method", "event_time"])]
    elif kind == 6:
        doc["data"]["leg"] = rng.choice(["mirror", "", "PRIMARY", 7])
    elif kind == 7:
        doc["data"]["latency_ms"] = rng.choice([-1, "fast", None])
    elif kind == 8:
        doc["type"] = rng.choice(["dev.gamedayhub.unknown.v9", "", 42])
    elif kind == 9:
        doc["data"]["surprise_field"] = "x"
    elif kind == 10:
        doc["data"]["event_time"] = rng.choice(["yesterday", "2026-13-45T25:61:00Z", 1700000000])
    else:
        doc = rng.choice([[], "just a string", 12345, None, True])  # valid JSON, not an event
        if doc == []:
            return b"{}"
    return json.dumps(doc).encode()


def test_thousands_of_bad_records_are_dead_lettered_and_every_good_one_stored(tmp_path, kafka_bootstrap):
    rng = random.Random(20261130)
    good = list(generate_request_legs(2_000, seed=13))
    bad = [(b"fuzz", mutations(rng, rng.choice(good)[1])) for _ in range(3_000)]
    records = good + bad
    rng.shuffle(records)
    spans_bad = [(None, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))) for _ in range(300)]

    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_MAX_RECORD_BYTES=str(MAX_BYTES),
                             HUB_PARTITIONS="3") as worker:
        send_records(kafka_bootstrap, worker.settings.topic_requests, records)
        send_records(kafka_bootstrap, worker.settings.topic_spans, spans_bad)
        assert worker.wait_for("SELECT count() FROM hub.requests", 2_000, timeout=120) == 2_000
        assert worker.wait_for("SELECT count() FROM hub.dead_letters", 3_300, timeout=120) == 3_300
        assert worker.process.poll() is None, "the worker crashed"
        by_topic = dict(worker.sql("SELECT source_topic, count() FROM hub.dead_letters GROUP BY source_topic"))
        assert by_topic == {worker.settings.topic_requests: 3_000, worker.settings.topic_spans: 300}
        reasons = dict(worker.sql("SELECT splitByChar(':', reason)[1] AS kind, count() FROM hub.dead_letters "
                                  "GROUP BY kind"))
        assert set(reasons) <= {"empty value", "oversized", "not JSON", "schema", "unknown type", "not protobuf"}
        assert reasons["oversized"] > 0 and reasons["schema"] > 0 and reasons["not JSON"] > 0
        # Every dead letter once, at a distinct source offset, and all of them on the topic too.
        distinct = worker.sql("SELECT uniqExact(source_topic, source_partition, source_offset) FROM hub.dead_letters")
        assert distinct == [[3_300]]
        consumer = KafkaConsumer(worker.settings.topic_dlq, bootstrap_servers=kafka_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=10_000)
        letters = {(d["source_topic"], d["source_partition"], d["source_offset"])
                   for d in (json.loads(m.value) for m in consumer)}
        consumer.close()
        assert len(letters) == 3_300
