"""Honest health: a worker whose store goes away is not ready and says degraded, naming the
stalled sink, its partitions, the error and since when; when the store is back it stores what
waited and is ready again. Real broker, real store server (the embedded engine behind HTTP)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.testing import StoreServerProcess, WorkerProcess, isolated_env

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def get(worker: WorkerProcess, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{worker.settings.http_url}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not seen in {timeout}s: {what}")


def metric(worker: WorkerProcess, name: str) -> float:
    request = urllib.request.Request(f"{worker.settings.http_url}/metrics")
    if worker.settings.api_token:
        request.add_header("Authorization", f"Bearer {worker.settings.api_token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


def test_a_sink_stalled_on_an_absent_store_fails_ready_and_recovers_when_the_store_returns(
        tmp_path, kafka_bootstrap):
    store = StoreServerProcess(tmp_path / "store")
    worker = WorkerProcess(isolated_env(tmp_path / "worker", kafka_bootstrap, HUB_CLICKHOUSE_URL=store.url,
                                        HUB_PARTITIONS="2", HUB_HEALTH_MAX_LAG="50"))
    count = f"SELECT count() FROM {worker.settings.database}.requests"
    try:
        store.launch()
        worker.launch()
        code, health = get(worker, "/health")
        assert (code, health["status"], health.get("problems", [])) == (200, "ok", [])
        send_records(kafka_bootstrap, worker.settings.topic_requests, generate_request_legs(200, seed=61))
        assert worker.wait_for(count, 200) == 200

        store.stop()
        send_records(kafka_bootstrap, worker.settings.topic_requests, generate_request_legs(200, seed=62))
        # Every sink that writes now stalls (the requests sink and the stream pairs it feeds).
        code, health = wait_until(
            lambda: (lambda h: h if any(p["sink"] == "requests" and p["state"] == "stalled"
                                    for p in h[1].get("problems", [])) else None)(
                get(worker, "/health")), 120, "the requests sink reported stalled")
        assert code == 200 and health["status"] == "degraded"
        status, ready = get(worker, "/ready")
        assert status == 503 and ready["ready"] is False and ready["problems"]
        stalled = [p for p in health["problems"] if p["sink"] == "requests" and p["state"] == "stalled"]
        assert stalled and all(p["error"] and p["since"] for p in stalled)
        assert {p["partition"] for p in stalled} <= {0, 1}
        # 200 legs wait on two partitions, more than 50 on at least one: lagging as well
        code, health = wait_until(
            lambda: (lambda h: h if any(p["state"] == "lagging" and p["sink"] == "requests"
                                        for p in h[1]["problems"]) else None)(get(worker, "/health")),
            60, "the requests sink reported lagging")
        lagging = [p for p in health["problems"] if p["state"] == "lagging" and p["sink"] == "requests"]
        assert all(p["partition"] in (0, 1) and "more than 50" in p["error"] for p in lagging)
        assert metric(worker, 'hub_sink_lag{sink="requests"}') == 200
        assert health["sinks"]["requests"]["state"] == "stalled"
        assert metric(worker, 'hub_sink_stalled_seconds{sink="requests"}') > 0
        summary = worker.stack.status()["worker"]["health"]
        assert summary["status"] == "degraded"

        store = StoreServerProcess.start(tmp_path / "store", port=store.port)
        wait_until(lambda: get(worker, "/ready")[0] == 200, 180, "/ready once the store is back")
        assert worker.wait_for(count, 400) == 400
        code, health = get(worker, "/health")
        assert (code, health["status"], health["problems"]) == (200, "ok", [])
        assert metric(worker, 'hub_sink_stalled_seconds{sink="requests"}') == 0
    finally:
        worker.stop()
        store.stop()
