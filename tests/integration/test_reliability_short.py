"""The reliability suite in its short form, as part of the test run.

``python -m bench.reliability --short --json PATH`` in a child process: its own embedded Kafka
broker (HUB_KAFKA_BOOTSTRAP is removed from its environment, so the broker-restart phase always
runs), one real worker with its own chDB store, 30,000 records with two worker SIGKILLs, a broker
restart, duplicated produces and the poison corpus across a SIGKILL; then a second worker in server mode, storing through a store
server that is SIGKILLed for 10 seconds while records flow and started again (and whatever phases
the suite adds). The counts it writes must show every phase stored exactly as expected (nothing
lost, nothing duplicated), each experiment's abort alert raised exactly once, and the server-mode
worker riding the outage out (it retried, it did not exit, no agent crashed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900  # the short suite takes about 4 to 5 minutes on a quiet 2-core machine; a hang fails instead of blocking


def test_short_reliability_suite_loses_nothing_duplicates_nothing_and_raises_the_alert_once(tmp_path):
    out = tmp_path / "reliability.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HUB_KAFKA_BOOTSTRAP", "HUB_HOME", "HUB_CONFIG_FILE")}
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.reliability", "--short", "--json", str(out)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it by now
        pytest.fail(f"the short reliability suite did not finish in {TIMEOUT_S}s:\n{exc.stdout or ''}\n"
                    f"{(exc.stderr or '')[-4000:]}", pytrace=False)
    where = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr (tail):\n{proc.stderr[-4000:]}"
    assert out.exists(), f"no counts written\n{where}"
    summary = json.loads(out.read_text())
    assert proc.returncode == 0 and summary["ok"], where

    phases = {row["phase"]: row for row in summary["phases"]}
    assert {"kills", "broker-restart", "duplicate-produce", "store-outage", "poison"} <= set(phases), where
    for name, row in phases.items():
        assert row["duplicated"] == 0 and row["lost"] == 0, f"{name}: {row}\n{where}"
        assert row["stored"] == row["expected_rows"] > 0, f"{name}: {row}\n{where}"
    # Poison: every good record once, every bad one a dead letter with a reason, across a SIGKILL.
    poison = summary["poison"]
    assert poison["problems"] == [] and poison["dead_letters_without_reason"] == 0, poison
    assert poison["agent_crashes_logged"] == 0 and poison["health"] == "ok", poison
    assert sum(poison["dead_letters"].values()) > 0 and sum(poison["stored_rows"].values()) > 0, poison
    # Redeliveries are stored once: as many distinct event ids as rows.
    for name in ("kills", "broker-restart", "store-outage"):
        assert phases[name]["distinct_ids"] == phases[name]["stored"] == phases[name]["sent"], phases[name]
    # Two produces of the same events are two Kafka records each: two rows per event id.
    dup = phases["duplicate-produce"]
    assert dup["stored"] == 2 * dup["distinct_ids"] == dup["sent"], dup
    assert summary["worker_sigkills"] >= 2 and summary["broker_restarts"] == 1, summary
    assert summary["alerts_raised"] == summary["alerts_expected"] >= 2, summary
    # Per experiment (the embedded worker's, the server-mode worker's) every expected alert stored
    # once and on the alerts topic once; the store outage's breach burst raises exactly one.
    assert len(summary["alerts"]) >= 2, summary["alerts"]
    for alerts in summary["alerts"]:
        assert alerts["expected"] == alerts["raised"] == alerts["on_topic"] >= 1, alerts
    [outage_alerts] = [a for a in summary["alerts"] if "store-outage" in a["phases"]]
    assert outage_alerts["raised"] == 1, outage_alerts
    # The store really was away while records flowed, and the worker retried through it.
    outage = summary["store_outage"]
    assert summary["store_outages"] == 1 and outage["records_sent_while_down"] > 0, outage
    assert outage["sink_retries_logged"] > 0, outage
    assert outage["worker_exits"] == 0 and outage["agent_crashes_logged"] == 0, outage
