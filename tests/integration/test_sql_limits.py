"""Ad-hoc SQL through a running worker's HTTP API is bounded in memory as well as in time, with
the limits of the hub's settings (``<home>/hub.env`` included), and never costs the worker its
partitions.

The worker holds the embedded engine (chDB) in its own process, so what a query allocates in the
engine, and what its answer becomes once decoded, is the worker's memory: the test reads the
worker's resident size before and its peak (``VmHWM``) after each query from /proc.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.errors import HubError
from hub.testing import WorkerProcess, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

MIB = 1 << 20
# What a query may add to the worker's peak resident size beyond its memory limit: the decoded
# answer (at most a 32nd of the limit in the engine's encoding), allocator slack, thread stacks.
SLACK = 384 * MIB


def status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture(scope="module")
def worker(tmp_path_factory, kafka_bootstrap):
    home = tmp_path_factory.mktemp("sql-limits") / "home"
    home.mkdir(parents=True)
    # Only in the hub's file, not in the worker's environment: the API must read it from there.
    (home / "hub.env").write_text("HUB_SQL_MAX_SECONDS=2\n")
    with WorkerProcess.start(home, kafka_bootstrap) as running:
        assert running.settings.sql_max_seconds == 2.0 and "HUB_SQL_MAX_SECONDS" not in running.env
        yield running


def ask(worker: WorkerProcess, query: str) -> dict | str:
    """The API's answer, or its one-line error."""
    try:
        return worker.stack.api("/v1/sql", {"query": query}, timeout=120)
    except HubError as exc:
        return str(exc)


def bounded(worker: WorkerProcess, query: str) -> tuple[dict | str, int]:
    """Run a query; returns the answer and how far the worker's peak resident size rose above
    its resident size before the query."""
    pid = worker.process.pid
    before = status_bytes(pid, "VmRSS")
    answer = ask(worker, query)
    return answer, max(0, status_bytes(pid, "VmHWM") - before)


def test_the_time_limit_of_hub_env_applies_to_the_api(worker):
    answer = ask(worker, "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 1")
    assert isinstance(answer, str) and "longer than 2 s (HUB_SQL_MAX_SECONDS)" in answer, answer


def test_a_query_that_would_take_gigabytes_is_cut_or_refused_and_the_worker_keeps_its_partitions(worker):
    limit = worker.settings.sql_max_memory
    assert limit == 1 << 30  # the default
    held = worker.partitions()
    assert held

    # 100 million rows from one array: once took the worker from 481 MB to 10.4 GB for a minute.
    answer, grew = bounded(worker, "SELECT arrayJoin(range(100000000))")
    assert isinstance(answer, dict), answer
    assert answer["truncated"] is True and answer["row_count"] == worker.settings.sql_max_rows
    assert answer["rows"][:2] == [[0], [1]]
    assert grew <= limit + SLACK, f"the worker grew {grew / MIB:.0f} MiB"

    # More than the memory limit inside the engine: refused with the setting's name.
    answer, grew = bounded(worker, "SELECT length(groupArray(number)) FROM numbers(400000000)")
    assert isinstance(answer, str) and "HUB_SQL_MAX_MEMORY" in answer and "1 GiB" in answer, answer
    assert grew <= limit + SLACK, f"the worker grew {grew / MIB:.0f} MiB"

    # Few rows, each a large array: the answer is refused before it is decoded into Python objects.
    answer, grew = bounded(worker, "SELECT range(900000) FROM numbers(100)")
    assert isinstance(answer, str) and "the answer is larger than 32 MiB" in answer, answer
    assert grew <= limit + SLACK, f"the worker grew {grew / MIB:.0f} MiB"

    # The worker is the same process, still ready, and holds the same partitions (no rebalance).
    assert worker.process.poll() is None and worker.stack.is_ready()
    assert worker.partitions() == held
    assert ask(worker, "SELECT 1 + 1")["rows"] == [[2]]


def test_hub_sql_without_a_running_hub_takes_its_limits_from_hub_env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.env").write_text(f"HUB_SQL_MAX_MEMORY={256 * MIB}\nHUB_SQL_MAX_ROWS=5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_HOME": str(home), "HUB_HTTP_PORT": str(free_port())})  # no hub answers there

    def hub_sql(query: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub.cli.main", "sql", query], env=env, capture_output=True,
                              text=True, timeout=300)

    needy = hub_sql("SELECT length(groupArray(number)) FROM numbers(100000000)")  # about 800 MB in the engine
    assert needy.returncode == 2, needy.stdout
    assert "more than 256 MiB of memory (HUB_SQL_MAX_MEMORY)" in needy.stderr and "Traceback" not in needy.stderr
    cut = hub_sql("SELECT number FROM numbers(100)")
    assert cut.returncode == 0 and cut.stdout.split()[-2:] == ["(5", "rows)"], cut.stdout
