"""The quickstart path through the real CLI: ``hub up``, ``hub emit``, ``hub sql``, ``hub status``, ``hub down``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from hub.testing import free_port
from tests.fixtures_kafka import free_port_pair

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def hub(env, *args, timeout=300, check=True):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    if os.environ.get("HUB_KAFKA_CACHE"):
        env["HUB_KAFKA_CACHE"] = os.environ["HUB_KAFKA_CACHE"]
    env.update({"HUB_HOME": str(tmp_path / "home"), "HUB_KAFKA_PORT": str(free_port_pair()),
                "HUB_HTTP_PORT": str(free_port()), "HUB_SESSION_TIMEOUT": "6"})
    yield env
    hub(env, "down", check=False, timeout=120)


def test_up_emit_sql_status_down_on_the_embedded_stack(cli_env):
    up = hub(cli_env, "up")
    assert "ready" in up.stdout
    started = [line for line in up.stdout.splitlines() if line.startswith("started the embedded Kafka broker (pid ")]
    assert len(started) == 1 and started[0].endswith(f"at 127.0.0.1:{cli_env['HUB_KAFKA_PORT']}; `hub down` stops it")
    emitted = hub(cli_env, "emit", "--count", "100000")
    assert "sent 100,000 events" in emitted.stdout and "acknowledged" in emitted.stdout
    acknowledged = time.monotonic()
    count = None
    while time.monotonic() - acknowledged < 30:
        count = hub(cli_env, "sql", "SELECT count() FROM hub.requests").stdout.strip()
        if count == "100000":
            break
        time.sleep(0.5)
    assert count == "100000"
    status = hub(cli_env, "status").stdout
    assert "kafka:  running" in status and "worker: running" in status and "stored=100000" in status
    csv_out = hub(cli_env, "sql", "SELECT leg, count() AS n FROM hub.requests GROUP BY leg ORDER BY leg",
                  "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "leg,n" and len(csv_out) >= 3
    hub(cli_env, "down")
    status = hub(cli_env, "status").stdout
    assert "kafka:  stopped" in status and "worker: stopped" in status
    # With no hub running, `hub sql` opens the store itself and sees the same rows.
    assert hub(cli_env, "sql", "SELECT count() FROM hub.requests").stdout.strip() == "100000"


def test_user_mistakes_get_one_line_and_a_non_zero_exit(cli_env, tmp_path):
    cases = [
        ("sql", "SELEC count() FROM nowhere"),
        ("emit", "--count", "0"),
        ("emit", "--file", str(tmp_path / "missing.jsonl")),
    ]
    for args in cases:
        result = hub(cli_env, *args, check=False, timeout=120)
        assert result.returncode != 0, args
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("hub: "), (args, result.stderr)
        assert "Traceback" not in result.stderr
