"""The experiment lifecycle over the HTTP API: the same commands and refusals as the CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from hub.settings import REPO_ROOT
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def call(url, method="GET", body=None, content_type="application/json", actor="bo@api"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": content_type, "X-Hub-Actor": actor})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_lifecycle_commands_and_refusals_over_http(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        base = worker.settings.http_url + "/v1/experiments"
        experiment = f"api-{uuid.uuid4().hex[:6]}"
        yaml_text = (REPO_ROOT / "examples/experiments/patient-api-db-failover.yaml").read_text()
        yaml_text = "\n".join(line for line in yaml_text.splitlines() if not line.startswith("id:"))
        yaml_text = f"id: {experiment}\n" + yaml_text
        status, answer = call(base, "POST", yaml_text.encode(), content_type="application/yaml")
        assert status == 201, answer
        assert answer["events"][0]["kind"] == "experiment_created"
        status, answer = call(base, "POST", yaml_text.encode(), content_type="application/yaml")
        assert status == 400 and "exists already" in answer["error"]

        status, answer = call(f"{base}/{experiment}/faults", "POST", {"action": "stop-az", "target": "az-a"})
        assert status == 409 and "cannot inject a fault into experiment" in answer["error"]
        status, answer = call(f"{base}/{experiment}/start", "POST", {})
        assert status == 409  # prerequisites are not all done
        status, _ = call(f"{base}/{experiment}/prerequisites", "POST", {"all_done": True})
        assert status == 201
        status, answer = call(f"{base}/{experiment}/start", "POST", {})
        assert status == 201 and [e["kind"] for e in answer["events"]] == ["experiment_started", "phase_changed"]
        status, answer = call(f"{base}/{experiment}/faults", "POST",
                              {"action": "stop-az", "target": "az-a", "fault_id": "f1", "parameters": {"zone": "a"}})
        assert status == 201
        status, answer = call(f"{base}/{experiment}/abort", "POST", {"reason": "patients cannot log in"})
        assert status == 201
        status, answer = call(f"{base}/{experiment}/complete", "POST", {})
        assert status == 409 and "aborted" in answer["error"]

        status, shown = call(f"{base}/{experiment}")
        assert status == 200 and shown["status"] == "aborted" and shown["abort_reason"] == "patients cannot log in"
        assert shown["active_faults"][0]["fault_id"] == "f1"
        status, history = call(f"{base}/{experiment}/history")
        assert [e["actor"] for e in history] == ["bo@api"] * len(history)
        status, _ = call(f"{base}/nope")
        assert status == 404
