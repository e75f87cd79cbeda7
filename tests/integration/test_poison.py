"""The poison suite: records nobody planned for, on every topic the worker reads, through a real worker.

The corpus (``hub.records.poison``) holds, between good records, every input that once lost a
batch or stalled a sink: a record one byte over the size limit (its dead letter is larger than
the broker allows), JSON nested 50,000 deep, an alert whose ``kind`` is a number, a span starting
at 2^64-1 ns, 101 legs on 101 days in one batch, a leg in year 9999, forged ends of a draft
experiment, plus empty, truncated, non-UTF-8 and wrongly typed records on every topic. After it,
exact counts: every good record stored exactly once, every bad one a dead letter with a reason,
no agent crashed, no sink stalled, and the worker still the process the test started (or, in
the SIGKILL test, the one it started again).
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from hub.records.poison import build_corpus, differences, expected_of, send_corpus, wait_for_outcome
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

# Rows on 101 days back must outlive the tables' TTL while they are counted.
ENV = {"HUB_TTL_DAYS": "400"}


def health(worker: WorkerProcess) -> dict:
    with urllib.request.urlopen(f"{worker.settings.http_url}/health", timeout=10) as response:
        return json.loads(response.read())


def agent_crashes(worker: WorkerProcess) -> list[str]:
    text = worker.log_path.read_text(errors="replace")
    return re.findall(r".*Crashed reason=(?!CancelledError).*", text)


def assert_outcome(worker: WorkerProcess, expected, timeout: float = 240.0) -> None:
    seen = wait_for_outcome(worker.sql, worker.settings, expected, timeout=timeout)
    problems = differences(seen, expected)
    print(f"poison suite: {expected.records} records, rows {seen['rows']}, dead letters {seen['dead_letters']}")
    assert problems == [], "\n".join(problems)
    assert agent_crashes(worker) == []
    state = health(worker)
    assert state.get("status") == "ok", state
    ready = worker.stack.api("/v1/status", timeout=10)
    assert ready.get("pid") == worker.process.pid


def test_every_poison_record_is_a_dead_letter_and_every_good_neighbour_is_stored_once(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, **ENV) as worker:
        corpus = build_corpus(worker.settings.max_record_bytes, seed=1)
        send_corpus(kafka_bootstrap, worker.settings, corpus)
        assert_outcome(worker, expected_of(corpus))
        assert worker.process.poll() is None


def test_a_random_mix_of_thousands_of_poison_records_across_a_worker_sigkill(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, **ENV) as worker:
        corpus = build_corpus(worker.settings.max_record_bytes, seed=100, copies=40)
        half = len(corpus) // 2
        send_corpus(kafka_bootstrap, worker.settings, corpus[:half])
        # Some of the first half is stored, some is not yet: the crash lands in the middle.
        worker.wait_for(f"SELECT count() > 0 FROM {worker.settings.database}.requests", 1, timeout=120)
        worker.kill()
        send_corpus(kafka_bootstrap, worker.settings, corpus[half:])
        worker.launch()
        assert_outcome(worker, expected_of(corpus), timeout=420.0)
