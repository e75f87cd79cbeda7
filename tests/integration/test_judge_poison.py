"""The abort judge outlives any record on the topics it reads: forged alerts (nested thousands of
levels deep, a top-level array, an alert without its id) and forged rollups are skipped and counted,
no agent crashes, a breached abort rule still fires, and the judge's state is part of /health."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid

import pytest

from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Checkout survives a zone outage
    scenario: Stop zone b while checkout traffic flows.
    hypothesis: Errors stay under 20%.
    expected_outcome: No abort.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}]}}
    phases: [{{name: baseline, planned_minutes: 1}}, {{name: injection, planned_minutes: 1}}]
    abort_conditions:
      - {{name: checkout-errors, measurement: error_rate, window: 10s, comparison: ">", threshold: 0.2,
          min_samples: 50, severity: abort}}
""")

DEEP = b"[" * 5000 + b"]" * 5000
FORGED_ALERTS = [DEEP, b"[1, 2, 3]", b'"alert"', b"not json", b"",
                 json.dumps({"kind": "alert", "status": "firing"}).encode(),
                 json.dumps({"kind": "alert", "alert_id": ["x"], "status": {"a": 1}}).encode(),
                 b'{"kind": "alert", "alert_id": ' + DEEP + b"}"]
FORGED_ROLLUPS = [DEEP, b"[1]", b"{}", b"null", b"\xff\xfe",
                  json.dumps({"token": "t", "experiment_id": 5, "cells": []}).encode(),
                  json.dumps({"token": "t", "experiment_id": "x", "cells": [["a", "b"]]}).encode()]


def legs(gateway, start, count, errors, spread=1.0):
    out = []
    for i in range(count):
        cid = uuid.uuid4().hex
        leg = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route="/checkout", method="POST",
                         backend="checkout-v1", status=503 if i < errors else 200, latency_ms=20.0,
                         event_time=start + dt.timedelta(seconds=spread * i / count))
        out.append((cid.encode(), encode_event(new_event(leg, source="/test"))))
    return out


def hub(env, *args):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout


def get(worker, path):
    try:
        with urllib.request.urlopen(worker.settings.http_url + path, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_forged_alerts_and_rollups_never_stop_the_judge(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_CORRELATION_LATENESS="1") as worker:
        env, settings = worker.env, worker.settings
        experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
        send_records(kafka_bootstrap, settings.topic_alerts, [(experiment.encode(), v) for v in FORGED_ALERTS])
        send_records(kafka_bootstrap, settings.topic_rollups, [(experiment.encode(), v) for v in FORGED_ROLLUPS])
        (tmp_path / "e.yaml").write_text(DEFINITION.format(id=experiment, gateway=gateway))
        hub(env, "experiment", "create", str(tmp_path / "e.yaml"))
        hub(env, "experiment", "start", experiment, "--force")

        now = dt.datetime.now(dt.timezone.utc)
        send_records(kafka_bootstrap, settings.topic_requests, legs(gateway, now, 100, errors=60, spread=0.5))
        firing = "SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' " \
                 f"AND experiment_id = '{experiment}'"
        assert worker.wait_for(firing, 1, timeout=60) == 1
        # the forged rollups, again after the judge holds its partitions (the agent's path, not the rebuild's)
        send_records(kafka_bootstrap, settings.topic_rollups, [(experiment.encode(), v) for v in FORGED_ROLLUPS])
        status = get(worker, "/v1/status")[1]
        for _ in range(480):
            if status["judge"]["skipped"].get(settings.topic_rollups, 0) >= 2 * len(FORGED_ROLLUPS):
                break
            time.sleep(0.25)
            status = get(worker, "/v1/status")[1]
        log = worker.log_path.read_text(errors="replace")
        assert "Crashed reason=" not in log
        assert status["judge"]["state"] == "ok"
        assert status["judge"]["skipped"].get(settings.topic_alerts, 0) >= len(FORGED_ALERTS)
        code, health = get(worker, "/health")
        assert code == 200 and health["status"] == "ok", health
        assert health["judge"]["state"] == "ok"
        code, ready = get(worker, "/ready")
        assert code == 200 and ready["ready"] is True
