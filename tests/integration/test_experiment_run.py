"""A whole experiment driven through the CLI against a real broker and store, with traffic flowing.

Traffic from a gateway the experiment targets carries no experiment id: the worker places
each request leg on the experiment and phase by target and event time. Then SQL answers the
questions of the practice: requests and error rate per phase, which faults were active when,
who did what. Finally ``hub replay`` rebuilds the tables from Kafka and they equal the live ones.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import uuid

import pytest

from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Patient search survives a slow database
    scenario: Add 300 ms latency to the patient database while search traffic flows.
    hypothesis: The gateway's timeouts and retries keep search errors under 5%.
    expected_outcome: Error rate stays under 5% in every phase.
    steady_state:
      - name: search errors
        sli: error_rate
        source: requests
        tolerance: {{max: 0.05}}
    prerequisites:
      - item: connection-refresh telemetry on the database client
    environment: {{name: staging, kind: non-live, risk: low}}
    targets:
      gateways: [{gateway}]
    phases:
      - {{name: baseline, planned_minutes: 1}}
      - {{name: injection, planned_minutes: 1}}
      - {{name: recovery, planned_minutes: 1}}
    abort_conditions:
      - {{name: errors, measurement: error_rate, window: 30s, comparison: ">", threshold: 0.5}}
""")


def legs(gateway: str, count: int, errors: int, at: dt.datetime | None = None):
    """``count`` primary legs through ``gateway`` at ``at`` (default now), ``errors`` of them 503."""
    at = at or dt.datetime.now(dt.timezone.utc)
    out = []
    for i in range(count):
        cid = uuid.uuid4().hex
        leg = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route="/patients/search",
                         method="GET", backend="patients-v1", status=503 if i < errors else 200,
                         latency_ms=12.5, event_time=at)
        out.append((cid.encode(), encode_event(new_event(leg, source="/test"))))
    return out


class Cli:
    def __init__(self, env):
        self.env = env

    def __call__(self, *args, check=True):
        result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=self.env, capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"hub {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result


def test_an_experiment_run_through_the_cli_answers_its_questions_in_sql_and_replays_equal(tmp_path, kafka_bootstrap):
    # A lateness above the 5 s the early legs below are stamped ahead.
    worker = WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_ACTOR="ana@gameday-room",
                                 HUB_CORRELATION_LATENESS="6")
    env = dict(worker.env)
    cli = Cli(env)
    settings = worker.settings
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    definition = tmp_path / "experiment.yaml"
    definition.write_text(DEFINITION.format(id=experiment, gateway=gateway))

    def send(records):
        send_records(kafka_bootstrap, settings.topic_requests, records)

    try:
        cli("experiment", "create", str(definition))
        # Refused transitions write nothing and say why in one line.
        refused = cli("experiment", "inject", experiment, "--action", "add-latency", "--target", "db", check=False)
        assert refused.returncode == 2 and "cannot inject a fault into experiment" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        cli("experiment", "check", experiment, "--all-done")
        cli("experiment", "start", experiment)
        send(legs(gateway, 100, errors=2))
        send(legs(f"{gateway}-other", 10, errors=0))  # another gateway: not part of the experiment
        cli("experiment", "phase", experiment, "injection")
        injected = cli("experiment", "inject", experiment, "--action", "add-latency", "--target", "patients-db",
                       "--param", "latency_ms=300", "--fault-id", "slow-db")
        assert "fault_injected" in injected.stdout
        send(legs(gateway, 100, errors=30))
        cli("experiment", "remove", experiment, "slow-db")
        # Legs stamped 5 s ahead arrive before the event that opens their phase (clock skew):
        # within the lateness they still land in it.
        ahead = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
        send(legs(gateway, 100, errors=1, at=ahead))
        cli("experiment", "phase", experiment, "recovery")
        total = "SELECT count() FROM hub.requests WHERE experiment_id = '%s'" % experiment
        assert worker.wait_for(total, 300, timeout=60) == 300
        cli("note", experiment, "retries hid most errors", "--surprise", "--expected", "<5% errors",
            "--actual", "30% errors during injection", "--tag", "patients-db")
        cli("experiment", "complete", experiment, "--summary", "timeouts too long")
        again = cli("experiment", "complete", experiment, check=False)
        assert again.returncode == 2 and "completed" in again.stderr

        per_phase = dict((p, (n, round(e, 2))) for p, n, e in worker.sql(
            f"SELECT phase, count(), avg(status >= 500) FROM hub.requests WHERE experiment_id = '{experiment}' "
            "GROUP BY phase"))
        assert per_phase == {"baseline": (100, 0.02), "injection": (100, 0.3), "recovery": (100, 0.01)}
        outside = worker.sql(f"SELECT count(), any(experiment_id) FROM hub.requests WHERE gateway = '{gateway}-other'")
        assert outside == [[10, ""]]

        assert worker.wait_for(
            f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'", 10, timeout=30) == 10
        faults = worker.sql(
            "SELECT f.fault_id, f.action, f.target, p.phase, f.end IS NOT NULL, f.start >= p.start, f.end <= p.end "
            f"FROM hub.experiment_faults AS f JOIN hub.experiment_phases AS p ON p.experiment_id = f.experiment_id "
            f"WHERE f.experiment_id = '{experiment}' AND p.phase = 'injection'")
        assert faults == [["slow-db", "add-latency", "patients-db", "injection", True, True, True]]
        audit = worker.sql(
            f"SELECT sequence, actor, kind FROM hub.experiment_events WHERE experiment_id = '{experiment}' ORDER BY sequence")
        assert [r[2] for r in audit] == [
            "experiment_created", "prerequisites_checked", "experiment_started", "phase_changed", "phase_changed",
            "fault_injected", "fault_removed", "phase_changed", "note_added", "experiment_completed"]
        assert {r[1] for r in audit} == {"ana@gameday-room"}
        status = worker.sql(f"SELECT status, phase FROM hub.experiments WHERE experiment_id = '{experiment}'")
        assert status == [["completed", ""]]

        shown = json.loads(cli("experiment", "show", experiment, "--json").stdout)
        assert shown["status"] == "completed" and [p["phase"] for p in shown["phases"]] == [
            "baseline", "injection", "recovery"]
        assert shown["notes"][0]["kind"] == "surprise"

        tables = {
            "requests": "SELECT * EXCEPT ingest_time FROM hub.requests ORDER BY event_id",
            "experiment_events": "SELECT * FROM hub.experiment_events ORDER BY experiment_id, sequence",
        }
        live = {name: worker.sql(q) for name, q in tables.items()}
    finally:
        worker.stop()

    replayed = cli("replay", "--yes")
    assert "replayed" in replayed.stdout
    for name, query in tables.items():
        rebuilt = json.loads("[" + ",".join(cli("sql", query, "--format", "json").stdout.splitlines()) + "]")
        assert [list(row.values()) for row in rebuilt] == [
            [json.loads(json.dumps(v, default=str)) for v in row] for row in live[name]], name
