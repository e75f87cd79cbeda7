"""Cluster mode on one host: two worker processes in one consumer group share the partitions of one
broker's topics and store through one store server; one is killed mid-stream and started again."""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.testing import StoreServerProcess, WorkerProcess, isolated_env

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

TOTAL = 60_000
PARTITIONS = 6
COUNT = "SELECT count() FROM hub.requests"
TOTALS = "SELECT count(), uniqExact(event_id) FROM hub.requests"


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def held(worker: WorkerProcess) -> set[int]:
    try:
        return set(worker.partitions())
    except Exception:  # a worker between rebalances may not answer for a moment
        return set()


def shared_by_both(first: WorkerProcess, second: WorkerProcess) -> bool:
    a, b = held(first), held(second)
    return bool(a) and bool(b) and not (a & b) and (a | b) == set(range(PARTITIONS))


def stored_by(worker: WorkerProcess) -> int:
    try:
        return int(worker.stack.api("/v1/status", timeout=10)["sink"]["requests"]["stored"])
    except Exception:
        return 0


def test_two_workers_share_partitions_and_one_killed_mid_stream_loses_and_duplicates_nothing(
        tmp_path, kafka_bootstrap):
    store = StoreServerProcess(tmp_path / "store")
    first = WorkerProcess(isolated_env(tmp_path / "w1", kafka_bootstrap, HUB_CLICKHOUSE_URL=store.url,
                                       HUB_PARTITIONS=str(PARTITIONS), HUB_SINK_BATCH_MAX="2000"))
    second = first.peer(tmp_path / "w2")
    topic = first.settings.topic_requests
    producer: threading.Thread | None = None
    killed, restarted, failed = threading.Event(), threading.Event(), threading.Event()
    sent: dict[str, int] = {}
    try:
        store.launch()
        first.launch()
        second.launch()
        assert second.settings.topic_requests == topic and second.settings.app_id == first.settings.app_id
        wait_until(lambda: shared_by_both(first, second), 120, "both workers hold request partitions")

        records = list(generate_request_legs(TOTAL, seed=21))
        thirds = [records[:TOTAL // 3], records[TOTAL // 3:2 * TOTAL // 3], records[2 * TOTAL // 3:]]

        def produce() -> None:
            # Paced traffic in three parts: before the kill, while one worker is down, after the
            # restart; each part waits for its moment so that every phase sees records flowing.
            def paced(part):
                for i, record in enumerate(part):
                    if i and i % 1_000 == 0:
                        time.sleep(0.2)
                    yield record

            total = 0
            for part, gate in zip(thirds, (None, killed, restarted)):
                if gate is not None and not gate.wait(300):
                    failed.set()
                    return
                count, _ = send_records(kafka_bootstrap, topic, paced(part))
                total += count
            sent["count"] = total

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()

        # Kill the second worker (SIGKILL, no shutdown code runs) once it is storing records.
        wait_until(lambda: stored_by(second) > 0, 120, "the second worker stores records")
        second.kill()
        killed.set()
        # The first takes over its partitions (after the session timeout) and keeps storing.
        wait_until(lambda: held(first) == set(range(PARTITIONS)), 120, "the first worker holds every partition")
        before = first.sql(COUNT)[0][0]
        wait_until(lambda: first.sql(COUNT)[0][0] > before, 120, "storage continues on the first worker alone")

        # Started again, the second worker gets a share back (a rebalance) and stores its part.
        second.launch()
        wait_until(lambda: shared_by_both(first, second), 120, "both workers hold request partitions again")
        restarted.set()
        wait_until(lambda: stored_by(second) > 0, 120, "the restarted worker stores records")

        producer.join(300)
        assert not failed.is_set() and sent.get("count") == TOTAL
        assert first.wait_for(COUNT, TOTAL, timeout=300) == TOTAL
        # Anything still in flight would show up as a duplicate now: ask (through either worker)
        # until two answers a second apart agree.
        answers = [first.sql(TOTALS)[0]]
        wait_until(lambda: answers.append(second.sql(TOTALS)[0]) or answers[-1] == answers[-2],
                   60, "two answers a second apart agree", interval=1.0)
        count, distinct = answers[-1]
        ledger = first.sql(f"SELECT count(DISTINCT partition) FROM hub.sink_ledger WHERE topic = '{topic}'")[0][0]
    finally:
        killed.set()
        restarted.set()
        if producer is not None:
            producer.join(300)
        for process in (second, first, store):
            process.stop()
    assert (count, distinct) == (TOTAL, TOTAL)
    assert ledger == PARTITIONS
