"""Saved questions on a real experiment run: a fault during which one route's error rate rises
sharply while the others stay healthy; fault-attribution must name that route first, and
error-rate-by-phase must show the change in the injection phase."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import uuid

import pytest

from hub.producer import send_records
from hub.questions import QUESTIONS, ask
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.sql import check_query, run_readonly
from hub.testing import WorkerProcess

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Orders survive a slow inventory database
    scenario: Break the inventory database while shop traffic flows.
    hypothesis: Only the inventory route suffers.
    expected_outcome: Errors stay on /inventory.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}]}}
    phases: [{{name: baseline, planned_minutes: 1}}, {{name: injection, planned_minutes: 1}}]
""")

ROUTES = ("/orders", "/inventory", "/search")


def legs(gateway: str, route: str, count: int, errors: int, latency_ms: float = 20.0):
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for i in range(count):
        cid = uuid.uuid4().hex
        leg = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route=route, method="GET",
                         backend=f"{route.strip('/')}-v1", status=503 if i < errors else 200,
                         latency_ms=latency_ms + (i % 7), event_time=now)
        out.append((cid.encode(), encode_event(new_event(leg, source="/test"))))
    return out


# The `hub` command line, with the questions command registered whether or not main lists it yet.
CLI = ("import sys, hub.cli.main as m; m.COMMAND_MODULES = tuple(dict.fromkeys(m.COMMAND_MODULES + "
       "('hub.cli.questions',))); sys.exit(m.main(sys.argv[1:]))")


def hub(env, *args):
    result = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"hub {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout


def json_rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.kafka
@pytest.mark.clickhouse
@pytest.mark.slow
def test_fault_attribution_names_the_route_that_broke_and_phases_show_the_change(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        env, topic = worker.env, worker.settings.topic_requests
        experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
        (tmp_path / "e.yaml").write_text(DEFINITION.format(id=experiment, gateway=gateway))
        hub(env, "experiment", "create", str(tmp_path / "e.yaml"))
        hub(env, "experiment", "start", experiment, "--force")
        for route in ROUTES:
            send_records(kafka_bootstrap, topic, legs(gateway, route, 100, errors=1))
        hub(env, "experiment", "phase", experiment, "injection")
        hub(env, "experiment", "inject", experiment, "--action", "kill-db", "--target", "inventory-db",
            "--fault-id", "inventory-down")
        send_records(kafka_bootstrap, topic, legs(gateway, "/inventory", 100, errors=70, latency_ms=25.0))
        send_records(kafka_bootstrap, topic, legs(gateway, "/orders", 100, errors=2))
        send_records(kafka_bootstrap, topic, legs(gateway, "/search", 100, errors=1))
        hub(env, "experiment", "remove", experiment, "inventory-down")
        hub(env, "note", experiment, "inventory answered 503 for most calls")
        total = f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'"
        assert worker.wait_for(total, 600, timeout=60) == 600
        assert worker.wait_for(f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'",
                               7, timeout=30) == 7

        listed = hub(env, "questions", "list")
        assert all(name in listed for name in QUESTIONS)

        attribution = json_rows(hub(env, "questions", "ask", "fault-attribution", "--experiment", experiment,
                                    "--format", "json"))
        assert [r["fault_id"] for r in attribution] == ["inventory-down"] * 3
        first = attribution[0]
        assert (first["route"], first["rank"], first["target"]) == ("/inventory", 1, "inventory-db")
        assert first["fault_error_rate"] == 0.7 and first["baseline_error_rate"] == 0.01
        assert first["cohens_h"] > 1.0 and first["effect_size"] == first["cohens_h"]
        assert all(abs(r["cohens_h"]) < 0.2 for r in attribution[1:])

        by_backend = json_rows(hub(env, "questions", "ask", "fault-attribution", "--experiment", experiment,
                                   "--param", "by=backend", "--format", "json"))
        assert by_backend[0]["backend"] == "inventory-v1"

        phases = {r["phase"]: r for r in json_rows(hub(env, "questions", "ask", "error-rate-by-phase",
                                                       "--experiment", experiment, "--format", "json"))}
        assert list(phases) == ["baseline", "injection"]
        assert (phases["baseline"]["requests"], phases["baseline"]["errors"]) == (300, 3)
        assert (phases["injection"]["requests"], phases["injection"]["errors"]) == (300, 73)
        assert phases["baseline"]["is_baseline"] and phases["baseline"]["error_rate_change"] == 0
        assert phases["injection"]["error_rate_change"] == round(73 / 300 - 0.01, 4)

        timeline = json_rows(hub(env, "questions", "ask", "timeline", "--experiment", experiment, "--format", "json"))
        assert [r["what"] for r in timeline] == ["experiment started", "phase", "phase", "fault injected",
                                                 "fault removed", "note: observation"]
        audit = json_rows(hub(env, "questions", "ask", "audit", "--experiment", experiment, "--format", "json"))
        assert [r["sequence"] for r in audit] == list(range(1, 8)) or len(audit) == 7
        shadow = hub(env, "questions", "ask", "shadow-differences", "--experiment", experiment)
        assert "(0 rows)" in shadow  # no shadow traffic in this experiment
        table = hub(env, "questions", "ask", "error-rate-by-phase", "--experiment", experiment)
        assert "injection" in table and "(2 rows)" in table


@pytest.mark.clickhouse
def test_every_question_passes_the_guard_and_runs_on_an_empty_store(store):
    def run(sql):
        return run_readonly(store, sql)

    for name, question in QUESTIONS.items():
        check_query(question.render(store.database, {"experiment": "x'; DROP TABLE t; --"}))
        result = ask(name, {"experiment": "nothing-here"}, store.database, run)
        assert result["rows"] == [], name
