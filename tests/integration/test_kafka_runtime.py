"""The embedded Kafka broker: it answers, carries records, reports its state and stops."""

from __future__ import annotations

import os
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from hub.runtime.kafka import KafkaRuntime, probe_kafka
from hub.runtime.topics import list_topics
from tests.fixtures_kafka import runtime_settings, start_runtime

pytestmark = pytest.mark.kafka


def test_broker_answers_metadata(kafka_bootstrap):
    cluster = probe_kafka(kafka_bootstrap)
    assert cluster["brokers"]


def test_produce_and_consume_100_records_on_a_3_partition_topic(kafka_bootstrap, make_topic):
    topic = make_topic(3)
    assert list_topics(kafka_bootstrap)[topic] == 3

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        futures = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
                   for i in range(100)]
        producer.flush(timeout=30)
        metadata = [f.get(timeout=30) for f in futures]
    finally:
        producer.close()
    assert {m.partition for m in metadata} == {0, 1, 2}

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=f"g-{topic}",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    received = {}
    try:
        deadline = time.monotonic() + 60
        while len(received) < 100 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    received[record.key] = record.value
        consumer.commit()
    finally:
        consumer.close()
    assert received == {f"k{i}".encode(): f"v{i}".encode() for i in range(100)}


def test_status_reports_the_running_broker(kafka_runtime, kafka_bootstrap):
    if kafka_runtime is None:  # an external cluster (HUB_TEST_KAFKA_BOOTSTRAP): it must answer
        assert probe_kafka(kafka_bootstrap)
        return
    status = kafka_runtime.status()
    assert status["running"] is True
    assert status["pid"] == kafka_runtime.read_pid()
    assert status["bootstrap"] == kafka_bootstrap
    assert status["version"] == kafka_runtime.version
    assert os.path.isfile(status["log"])
    assert os.path.isdir(status["data_dir"])


@pytest.mark.slow
def test_a_second_runtime_starts_and_stops_cleanly(tmp_path_factory, kafka_bootstrap):
    settings = runtime_settings(tmp_path_factory.mktemp("second-kafka"))
    assert settings.bootstrap != kafka_bootstrap
    runtime = start_runtime(settings)
    try:
        pid = runtime.read_pid()
        assert runtime.status()["running"] and runtime.status()["pid"] == pid
        assert probe_kafka(runtime.bootstrap)["brokers"]
        # A second start of the same home is a no-op returning the same broker.
        assert KafkaRuntime(settings).start() == pid
    finally:
        assert runtime.stop(timeout=30)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    status = KafkaRuntime(settings).status()
    assert status["running"] is False and status["pid"] is None
    assert not runtime.pid_file.exists()
    # The broker wrote a readable log of its own and shut down in order.
    log_text = runtime.log_file.read_text()
    assert "Kafka Server started" in log_text
    assert "log4j:WARN" not in runtime.out_file.read_text()
