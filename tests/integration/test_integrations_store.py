"""The seed tools' integrations against a real broker and a real worker: real tool output in, rows and timelines out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.experiments.events import encode_event
from hub.experiments.log import LogWriter
from hub.experiments.service import ExperimentService
from hub.integrations import chaostoolkit
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

TOOLS = Path(__file__).resolve().parents[1] / "data" / "tools"

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Patient API rides out a dependency outage
    scenario: Take a dependency away while traffic flows.
    hypothesis: The API keeps answering.
    expected_outcome: Error rate stays under 5%.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets:
      services: [{service}]
""")


# ``hub import`` until hub.cli.main lists hub.cli.imports in COMMAND_MODULES (then this adds nothing).
BOOT = ("import sys; from hub.cli import main\n"
        "if 'hub.cli.imports' not in main.COMMAND_MODULES: main.COMMAND_MODULES += ('hub.cli.imports',)\n"
        "sys.exit(main.main())")


class Cli:
    def __init__(self, env):
        self.env = env

    def __call__(self, *args, check=True):
        result = subprocess.run([sys.executable, "-c", BOOT, *args], env=self.env, capture_output=True,
                                text=True, timeout=180, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"hub {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def hub(tmp_path_factory, kafka_bootstrap):
    # Samples carry their tools' original timestamps (2019-2025): keep rows whatever their age.
    worker = WorkerProcess.start(tmp_path_factory.mktemp("integrations") / "home", kafka_bootstrap,
                                 HUB_TTL_DAYS="0", HUB_ACTOR="ana@gameday-room")
    try:
        yield worker, Cli(dict(worker.env))
    finally:
        worker.stop()


def create(cli, tmp_path: Path, service: str, start: bool = True) -> str:
    experiment = f"exp-{uuid.uuid4().hex[:6]}"  # 7 digits in a row read as a record number
    path = tmp_path / f"{experiment}.yaml"
    path.write_text(DEFINITION.format(id=experiment, service=service))
    cli("experiment", "create", str(path))
    cli("experiment", "check", experiment, "--all-done")
    if start:
        cli("experiment", "start", experiment)
    return experiment


def test_vegeta_results_land_in_requests_tagged_with_the_experiment(hub, tmp_path):
    worker, cli = hub
    experiment = create(cli, tmp_path, "ccf")
    out = cli("import", "vegeta", str(TOOLS / "vegeta-encode.jsonl"), "--experiment", experiment,
              "--route", "/app/log/{kind}").stdout
    assert "sent 5 vegeta results" in out
    query = f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'"
    assert worker.wait_for(query, 5, timeout=60) == 5
    rows = worker.sql(f"SELECT gateway, leg, method, route, backend, status, latency_ms, request_bytes, "
                      f"response_bytes, error != '', source FROM hub.requests WHERE experiment_id = '{experiment}' "
                      "ORDER BY event_time")
    assert rows[0] == ["vegeta", "primary", "GET", "/", "unknown", 0, pytest.approx(1.089318), 0, 0, True, "/vegeta"]
    assert rows[1][:8] == ["vegeta", "primary", "POST", "/app/log/{kind}", "127.82.156.156:32923", 200,
                           pytest.approx(117.952597, rel=1e-6), 38]
    assert [r[5] for r in rows[2:]] == [200, 500, 0]
    # a file that is not vegeta output: one line, exit 2, nothing sent
    bad = tmp_path / "report.json"
    bad.write_text('{"latencies": {"total": 237119463}}\n')
    refused = cli("import", "vegeta", str(bad), "--experiment", experiment, check=False)
    assert refused.returncode == 2 and "line 1: not a `vegeta encode` JSON result" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


# Dropwizard: tests/integration/test_dropwizard_registry.py (a real registry and MetricsServlet).


def test_spinnaker_webhook_puts_the_stage_event_on_the_experiment_timeline(hub, tmp_path):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from hub.api.server import json_response
    from hub.integrations.spinnaker import ROUTE, add_spinnaker_routes

    worker, cli = hub
    application = f"hcm{uuid.uuid4().hex[:6]}"
    experiment = create(cli, tmp_path, application)
    payload = json.loads((TOOLS / "spinnaker-stage-complete.json").read_text())
    payload["details"]["application"] = application  # the sample's application, renamed to this test's
    payload["content"]["execution"]["application"] = application
    # the stage ends now, while the experiment runs (its sample times are from 2018)
    payload["content"]["startTime"] = payload["content"]["endTime"] = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)

    async def exchange():
        app = web.Application()
        add_spinnaker_routes(app, worker.settings, json_response)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            recorded = await client.post(ROUTE, json=payload)
            other = dict(payload, details=dict(payload["details"], application="nobody-targets-this"))
            ignored = await client.post(ROUTE, json=other)
            bad = await client.post(ROUTE, data=b'{"hello": "world"}')
            return ((recorded.status, await recorded.json()), (ignored.status, await ignored.json()),
                    (bad.status, await bad.json()))

    (status, body), (i_status, i_body), (b_status, b_body) = asyncio.run(exchange())
    assert status == 202 and body["experiment_id"] == experiment
    assert [e["kind"] for e in body["events"]] == ["note_added"]
    assert i_status == 200 and "no experiment matches" in i_body["ignored"]
    assert b_status == 400 and "not a Spinnaker event" in b_body["error"]
    notes = ExperimentService(worker.settings).get(experiment).notes
    assert [(n.text, n.note_kind, n.tags, n.actor, n.phase) for n in notes] == [(
        "Spinnaker pipeline 'hcm pipeline' stage '(unnamed)' completed (execution 88ebc19f-43bc-460c-9de5-2347b48f8efb)",
        "observation", ("spinnaker", application, "orca:stage:complete"), "spinnaker", "baseline")]


def kinds(events):
    return [e.__struct_config__.tag for e in events]


def test_chaos_toolkit_control_and_journal_import_write_the_timeline_the_worker_stores(hub, tmp_path):
    worker, cli = hub
    settings = worker.settings
    journal = json.loads((TOOLS / "chaostoolkit-journal-deviated.json").read_text())
    exp = journal["experiment"]

    # (a) the control, called the way Chaos Toolkit calls it during a run
    live = create(cli, tmp_path, "frontend", start=False)
    arguments = {"experiment_id": live, "bootstrap": settings.bootstrap, "topic": settings.topic_experiments}
    c = chaostoolkit
    c.configure_control(**arguments)
    try:
        c.before_experiment_control(exp, **arguments)
        c.before_hypothesis_control(exp["steady-state-hypothesis"], **arguments)
        c.after_hypothesis_control(exp["steady-state-hypothesis"], state=journal["steady_states"]["before"], **arguments)
        c.before_method_control(exp, **arguments)
        for run in journal["run"]:
            c.before_activity_control(run["activity"], **arguments)
            c.after_activity_control(run["activity"], state=run, **arguments)
        c.after_method_control(exp, state=journal["run"], **arguments)
        c.before_hypothesis_control(exp["steady-state-hypothesis"], **arguments)
        for probe in journal["steady_states"]["after"]["probes"]:
            c.before_activity_control(probe["activity"], **arguments)
            c.after_activity_control(probe["activity"], state=probe, **arguments)
        c.after_hypothesis_control(exp["steady-state-hypothesis"], state=journal["steady_states"]["after"], **arguments)
        c.after_experiment_control(exp, state=journal, **arguments)
    finally:
        c.cleanup_control()
    service = ExperimentService(settings)
    try:
        state = service.get(live)
        assert state.status == "aborted" and state.aborted_by == "chaostoolkit"
        assert state.abort_reason == "Chaos Toolkit run failed: the steady state deviated after the method"
        assert [(f.action, f.injector, f.end is not None) for f in state.fault_history] == [
            ("terminate-frontend-service", "chaostoolkit", True)]
        assert [n.note_kind for n in state.notes] == ["observation", "surprise"]
        assert [p.phase for p in state.phase_history] == ["baseline", "injection", "observation"]

        # (b) a finished journal imported later, onto an experiment created before that run
        imported = f"exp-{uuid.uuid4().hex[:6]}"
        created = lifecycle.create(parse_definition(DEFINITION.format(id=imported, service="frontend")), "ana",
                                   dt.datetime(2020, 6, 5, 9, 0, tzinfo=dt.timezone.utc))
        writer = LogWriter(settings.bootstrap, settings.topic_experiments)
        try:
            writer.append(imported, [encode_event(created)])
        finally:
            writer.close()
        path = tmp_path / "journal.json"
        path.write_text((TOOLS / "chaostoolkit-journal-deviated.json").read_text())
        out = cli("import", "chaostoolkit", str(path), "--experiment", imported)
        assert out.stderr == ""
        history = service.history(imported)
    finally:
        service.close()
    assert kinds(history) == ["experiment_created", "experiment_started", "phase_changed", "note_added",
                              "phase_changed", "fault_injected", "phase_changed", "note_added", "fault_removed",
                              "experiment_aborted"]
    assert history[1].time == dt.datetime(2020, 6, 5, 9, 13, 58, 85000, tzinfo=dt.timezone.utc)
    assert history[5].time == dt.datetime(2020, 6, 5, 9, 13, 58, 127000, tzinfo=dt.timezone.utc)
    assert history[-1].time == dt.datetime(2020, 6, 5, 9, 13, 58, 373000, tzinfo=dt.timezone.utc)
    assert {e.actor for e in history[1:]} == {"ana@gameday-room"}

    # the worker stores both timelines in hub.experiment_events
    for experiment, count in ((live, len(ExperimentService(settings).history(live))), (imported, 10)):
        query = f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'"
        assert worker.wait_for(query, count, timeout=60) == count
    stored = worker.sql(f"SELECT kind, toString(time) FROM hub.experiment_events WHERE experiment_id = '{imported}' "
                        "AND kind = 'fault_injected'")
    assert stored == [["fault_injected", "2020-06-05 09:13:58.127"]]
