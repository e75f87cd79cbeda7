"""Experiments through a real worker: ids stored as created, free text redacted before the log.

- An experiment id as the hub makes them (a slug ending in a random hex suffix that holds a run of
  seven digits, ``exp-c2964655``) is stored as it was created in every table that carries it, so
  SQL filters by it find the experiment's events, request legs and alerts; an id that is a record
  number is still replaced.
- A note, a surprise and an abort reason holding a patient's name, MRN and date of birth, sent with
  the CLI and through the HTTP API against the real broker, reach the experiment topic already
  redacted: the raw records of the topic, ``hub experiment show`` and the store carry none of them.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import textwrap
import urllib.request
import uuid

import pytest

from hub.experiments.log import read_log
from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Checkout rides out a database failover
    scenario: The primary database is stopped during the injection phase.
    hypothesis: Error rate stays under five percent.
    expected_outcome: Failover within a minute.
    steady_state:
      - name: errors
        sli: error_rate
        source: requests
        tolerance: {{max: 0.05}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets:
      gateways: [edge]
    phases:
      - {{name: baseline, planned_minutes: 1}}
      - {{name: injection, planned_minutes: 1}}
""")

#: What a person types into a gameday note, and what must never be read back.
NAME, MRN, DOB = "Zebulon Quillfeather", "004417829", "03/14/1962"
SEEDED = [NAME, "Quillfeather", MRN, DOB]


def cli(env, *args):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"hub {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def post(url: str, body: dict, actor: str) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-Hub-Actor": actor})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status


@pytest.fixture(scope="module")
def worker(tmp_path_factory, kafka_bootstrap):
    with WorkerProcess.start(tmp_path_factory.mktemp("redaction-experiments") / "home", kafka_bootstrap,
                             HUB_ACTOR="ana@gameday-room") as w:
        yield w


def create(worker, tmp_path, experiment: str) -> dict:
    definition = tmp_path / f"{experiment}.yaml"
    definition.write_text(DEFINITION.format(id=experiment))
    env = dict(worker.env)
    cli(env, "experiment", "create", str(definition))
    return env


def test_an_experiment_id_with_a_run_of_digits_in_its_hex_suffix_is_stored_as_created(worker, tmp_path):
    # "exp-c" and seven digits: the suffix is hex, with a run of seven digits a record number could have
    experiment = "exp-c" + "".join(random.choice("0123456789") for _ in range(7))
    create(worker, tmp_path, experiment)
    now = dt.datetime.now(dt.timezone.utc)
    legs = []
    for eid in (experiment, "mrn-004417829"):
        data = RequestLeg(correlation_id=str(uuid.uuid4()), leg="primary", gateway="edge", route="/checkout",
                          method="GET", backend="checkout-v1", status=200, latency_ms=3.0, event_time=now,
                          experiment_id=eid, phase="baseline")
        legs.append((data.correlation_id.encode(), encode_event(new_event(data, source="/edge"))))
    send_records(worker.settings.bootstrap, worker.settings.topic_requests, legs)
    alert_id = f"{experiment}/api-failing/{int(now.timestamp())}"
    alert = {"kind": "alert", "alert_id": alert_id, "status": "firing", "experiment_id": experiment, "rule": "r",
             "severity": "abort", "measurement": "error_rate", "comparison": ">", "threshold": 0.1, "observed": 0.2,
             "samples": 3, "window_start": now.isoformat(), "window_end": now.isoformat(), "top_contributors": [],
             "example_request_ids": [], "message": "m", "action": "", "url": "", "ok": True, "status_code": 200,
             "attempts": 1, "error": "", "time": now.isoformat()}
    send_records(worker.settings.bootstrap, worker.settings.topic_alerts, [(None, json.dumps(alert).encode())])

    where = f"experiment_id = '{experiment}'"
    assert worker.wait_for(f"SELECT count() FROM hub.experiment_events WHERE {where}", 1, timeout=90) == 1
    assert worker.wait_for(f"SELECT count() FROM hub.requests WHERE {where}", 1, timeout=90) == 1
    assert worker.wait_for(f"SELECT count() FROM hub.alerts WHERE {where} AND alert_id = '{alert_id}'", 1,
                           timeout=90) == 1
    assert worker.sql(f"SELECT status FROM hub.experiments WHERE {where}") == [["draft"]]
    # a record number in the same column is still replaced (by a digest)
    assert worker.wait_for("SELECT count() FROM hub.requests WHERE experiment_id LIKE '[REDACTED:id:%'", 1,
                           timeout=90) == 1
    assert worker.sql("SELECT count() FROM hub.requests WHERE experiment_id LIKE '%004417829%'") == [[0]]


def test_experiment_notes_and_reasons_reach_the_topic_redacted(worker, tmp_path):
    experiment = f"notes-{uuid.uuid4().hex[:6]}"
    env = create(worker, tmp_path, experiment)
    cli(env, "note", experiment, f"patient {NAME} was paged about bed 4, MRN {MRN}", "--tag", f"mrn {MRN}")
    cli(env, "note", experiment, "paging slow", "--surprise", "--expected", f"DOB {DOB} shown",
        "--actual", f"chart for {NAME} empty")
    base = f"{worker.settings.http_url}/v1/experiments/{experiment}"
    assert post(base + "/notes", {"text": f"called Mr. {NAME} back, born {DOB}"}, actor="ana@gameday-room") == 201
    assert post(base + "/start", {"force": True}, actor="ana@gameday-room") in (200, 201)
    assert post(base + "/abort", {"reason": f"patient {NAME} (MRN {MRN}) in the test data"},
                actor="ana@gameday-room") in (200, 201)

    # the topic itself, record by record
    raw = b"\n".join(value for _, _, value in read_log(worker.settings.bootstrap, worker.settings.topic_experiments)
                     if json.loads(value)["experiment_id"] == experiment)
    assert raw.count(b'"kind":"note_added"') == 3 and b'"kind":"experiment_aborted"' in raw
    assert b"[REDACTED:" in raw
    for seed in SEEDED:
        assert seed.encode() not in raw, seed
    # the registry's view (CLI) and the store
    shown = cli(env, "experiment", "show", experiment, "--json")
    assert json.loads(shown)["status"] == "aborted" and "[REDACTED:" in shown
    events = f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'"
    assert worker.wait_for(events, 7, timeout=90) == 7
    stored = json.dumps(worker.sql(f"SELECT actor, payload FROM hub.experiment_events "
                                   f"WHERE experiment_id = '{experiment}'"))
    for seed in SEEDED:
        assert seed not in shown and seed not in stored, seed
