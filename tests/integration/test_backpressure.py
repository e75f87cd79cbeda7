"""Back-pressure: when ClickHouse is slow, a worker consumes slower instead of buffering without bound.

The store is made slow from outside the product (``tests/faults/sitecustomize.py``: every
insert sleeps while a file exists). 200,000 records (about 105 MB of JSON) are produced to one
partition while each insert takes 1.5 s more. The sink agent awaits each batch and retries
without acking; Faust stops fetching a partition whose stream buffer holds
``stream_buffer_maxsize`` (65,536) events. So, while the store is slow:

- the worker's resident memory grows by much less than the records would take if it fetched
  them all (it is sampled from ``/proc/<pid>/status``);
- the consumer group's committed offset (committed only after rows are stored) stays far
  behind the log end: the lag stays large, the records wait in Kafka, not in the worker.

Then the delay is lifted and every record is stored exactly once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

FAULTS = Path(__file__).resolve().parents[1] / "faults"
TOTAL = 200_000
BUFFER_EVENTS = 65_536  # streams/app.py: stream_buffer_maxsize
COUNT = "SELECT count() FROM hub.requests"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def group_lag(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(log end offset, committed offset of the group) summed over the topic's partitions."""
    from kafka import KafkaConsumer, TopicPartition

    # A consumer that never subscribes does not join the group; it only reads its offsets.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        done = sum(consumer.committed(tp) or 0 for tp in partitions)
        return sum(ends.values()), done
    finally:
        consumer.close()


def test_slow_store_slows_consumption_and_memory_stays_bounded_then_all_stored_once(tmp_path, kafka_bootstrap):
    delay_file = tmp_path / "store-delay"
    delay_file.write_text("1.5")
    worker = WorkerProcess.start(
        tmp_path / "home", kafka_bootstrap, HUB_PARTITIONS="1", HUB_SINK_BATCH_MAX="2000",
        HUB_FAULT_STORE_DELAY_FILE=str(delay_file),
        PYTHONPATH=os.pathsep.join(p for p in (str(FAULTS), os.environ.get("PYTHONPATH", "")) if p))
    topic, group = worker.settings.topic_requests, worker.settings.app_id
    samples: list[float] = []
    try:
        pid = worker.process.pid
        time.sleep(2)
        rss_ready = rss_mb(pid)
        sent = {}
        producer = threading.Thread(
            target=lambda: sent.update(count=send_records(kafka_bootstrap, topic,
                                                          generate_request_legs(TOTAL, seed=21))[0]))
        producer.start()
        started = time.monotonic()
        while producer.is_alive() or time.monotonic() - started < 25:
            samples.append(rss_mb(pid))
            time.sleep(0.5)
        producer.join()
        assert sent["count"] == TOTAL
        end, committed = group_lag(kafka_bootstrap, group, topic)
        stored_while_slow = worker.sql(COUNT)[0][0]
        rss_peak = max(samples)
        print(f"rss at ready {rss_ready:.0f} MB, peak while slow {rss_peak:.0f} MB; "
              f"log end {end}, committed {committed}, stored {stored_while_slow}")
        # The records wait in Kafka: most of them are neither stored nor committed.
        assert end == TOTAL
        assert end - committed >= TOTAL - BUFFER_EVENTS, (end, committed)
        assert stored_while_slow <= TOTAL - BUFFER_EVENTS
        # The worker holds at most about one stream buffer of records (65,536 events of ~530 B
        # JSON, with Faust's event and message objects around each), not the 200k records on the
        # topic (105 MB of values alone; as Faust events several times that). Measured: +140 to +160 MB.
        assert rss_peak - rss_ready < 200, (rss_ready, rss_peak)

        delay_file.unlink()
        assert worker.wait_for(COUNT, TOTAL, timeout=420) == TOTAL
        time.sleep(2)
        count, distinct = worker.sql("SELECT count(), uniqExact(event_id) FROM hub.requests")[0]
        assert (count, distinct) == (TOTAL, TOTAL)
        deadline = time.monotonic() + 30
        while group_lag(kafka_bootstrap, group, topic)[1] < TOTAL and time.monotonic() < deadline:
            time.sleep(0.5)
        assert group_lag(kafka_bootstrap, group, topic) == (TOTAL, TOTAL)
    finally:
        worker.stop()
