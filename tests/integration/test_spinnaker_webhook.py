"""The Spinnaker webhook of a running worker (real broker, real store): Echo events in the shape
Echo and Orca send them (tests/spinnaker_events.py names the source files) on the experiment's
timeline, at their own time, once, with their failures, and a Kayenta verdict beside the hub's
canary judgment."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.experiments.service import ExperimentService
from hub.integrations.spinnaker import ROUTE
from hub.testing import WorkerProcess
from tests.spinnaker_events import DEFINITION, execution, execution_event, flattened, stage, stage_event, wrapped

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]



@pytest.fixture(scope="module")
def worker(tmp_path_factory, kafka_bootstrap):
    process = WorkerProcess.start(tmp_path_factory.mktemp("spinnaker") / "home", kafka_bootstrap)
    try:
        yield process
    finally:
        process.stop()


def post(worker, body) -> tuple[int, dict]:
    request = urllib.request.Request(worker.settings.http_url + ROUTE, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start_experiment(worker, service: str) -> tuple[str, dt.datetime]:
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    svc = ExperimentService(worker.settings)
    try:
        svc.create(parse_definition(DEFINITION.format(id=experiment, service=service)), "ana")
        svc.command(experiment, lambda s: lifecycle.check_prerequisites(s, [], "ana", dt.datetime.now(dt.timezone.utc)))
        svc.command(experiment, lambda s: lifecycle.start(s, "ana", dt.datetime.now(dt.timezone.utc)))
        return experiment, svc.get(experiment).started_at
    finally:
        svc.close()


def notes(worker, experiment):
    svc = ExperimentService(worker.settings)
    try:
        return svc.get(experiment).notes
    finally:
        svc.close()


def test_late_events_old_pipelines_resends_and_restarts(worker):
    application = f"patients{uuid.uuid4().hex[:6]}"
    experiment, started = start_experiment(worker, application)
    time.sleep(1.5)  # room between the start and now for the events' own times
    at = lambda s: started + dt.timedelta(seconds=s)  # noqa: E731
    smoke = stage("Smoke test", "runJob", "TERMINAL", at(0.2), at(1.0),
                  {"exception": {"details": {"errors": ["2 of 40 checks failed"]}}})
    run = execution(application, [smoke], "TERMINAL", at(0.1), at(1.1))

    status, failed = post(worker, flattened(execution_event(run, "failed", at(1.2))))  # Echo's flatten: true
    assert status == 202 and failed["experiment_id"] == experiment and "late" not in failed
    assert failed["events"][0]["time"].startswith(at(1.1).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23])
    # the stage's start arrives after the pipeline's end (Echo resent it): placed after it, marked late
    status, late = post(worker, wrapped(stage_event(run, smoke, "starting", at(0.3))))  # wrap: true
    assert status == 202 and late["late"]["seconds"] == pytest.approx(0.9, abs=0.002)
    assert late["late"]["happened_at"].startswith(at(0.2).isoformat()[:23]) and "late" in late["tags"]
    # the stage's failure, sent twice: stored once
    failure = stage_event(run, smoke, "failed", at(1.0))
    assert post(worker, failure)[0] == 202
    status, again = post(worker, failure)
    assert status == 200 and again["duplicate"].startswith("spinnaker-")
    # a pipeline that finished before the experiment began is not the experiment's
    old = execution(application, [], "SUCCEEDED", at(-120), at(-60))
    status, ignored = post(worker, execution_event(old, "complete", at(0.5)))
    assert status == 200 and "no experiment matches" in ignored["ignored"]
    # Echo retries across a restart of the hub: the log remembers
    worker.stop()
    worker.launch()
    status, again = post(worker, failure)
    assert status == 200 and "duplicate" in again

    recorded = notes(worker, experiment)
    assert [(n.note_kind, n.text.split(" (execution")[0]) for n in recorded] == [
        ("surprise", "Spinnaker pipeline 'deploy-patients' failed"),
        ("observation", "Spinnaker pipeline 'deploy-patients' stage 'Smoke test' (runJob) started"),
        ("surprise", "Spinnaker pipeline 'deploy-patients' stage 'Smoke test' (runJob) failed")]
    assert recorded[0].actual == "stage 'Smoke test': 2 of 40 checks failed"
    assert "[late: happened at " in recorded[1].text and recorded[1].time == recorded[0].time
    assert recorded[2].actual == "2 of 40 checks failed"


def test_a_kayenta_verdict_lands_beside_the_hub_canary_verdicts_and_its_waits_stay_out(worker):
    application = f"patients{uuid.uuid4().hex[:6]}"
    experiment, started = start_experiment(worker, application)
    time.sleep(1.0)
    at = lambda s: started + dt.timedelta(seconds=s)  # noqa: E731
    parent = stage("Canary Analysis", "kayentaCanary", "TERMINAL", at(0.1), at(0.8), {
        "canaryConfig": {"scoreThresholds": {"pass": 75, "marginal": 50}}, "intervalStageId": "I",
        "canaryScores": [88.0, 61.5], "canaryScoreMessage": "Final canary score 61.5 is below the pass score threshold."})
    warmup = stage("Warmup Wait", "wait", "SUCCEEDED", at(0.1), at(0.2), {"waitTime": 60},
                   synthetic_owner="STAGE_BEFORE", parent=parent["id"])
    run = execution(application, [parent, warmup], "TERMINAL", at(0.05), at(0.9))
    status, body = post(worker, stage_event(run, warmup, "complete", at(0.2)))
    assert status == 200 and "folded into its parent" in body["ignored"]
    status, body = post(worker, stage_event(run, parent, "failed", at(0.8)))
    assert status == 202 and "kayenta-fail" in body["tags"]
    rows = worker.sql("SELECT metric, verdict, effect_size, baseline_value, canary_samples, route "
                      f"FROM hub.canary_verdicts WHERE experiment_id = '{experiment}'")
    assert rows == [["kayenta_score", "fail", 61.5, 75.0, 2, "/"]]
    [note] = notes(worker, experiment)
    assert note.note_kind == "surprise"
    assert note.actual == "Final canary score 61.5 is below the pass score threshold."


def test_other_sources_bad_parameters_unreadable_scores_and_runs_after_the_end(worker):
    from hub.report.build import build_report

    application = f"patients{uuid.uuid4().hex[:6]}"
    experiment, started = start_experiment(worker, application)
    time.sleep(1.0)
    at = lambda s: started + dt.timedelta(seconds=s)  # noqa: E731
    run = execution(application, [], "SUCCEEDED", at(0.1), at(0.2), parameters={"experiment_id": experiment})
    event = execution_event(run, "complete", at(0.3))
    # an event from Igor (a build trigger), not Orca: ignored, as documented
    status, body = post(worker, dict(event, details=dict(event["details"], source="igor")))
    assert status == 200 and "'igor'" in body["ignored"]
    # an experiment id that is no string is a bad request; one the hub does not know, 404
    for value in (12, ["x"]):
        bad = execution(application, [], "SUCCEEDED", at(0.1), at(0.2), parameters={"experiment_id": value})
        status, body = post(worker, execution_event(bad, "complete", at(0.3)))
        assert status == 400 and "must be a string" in body["error"]
    unknown = execution(application, [], "SUCCEEDED", at(0.1), at(0.2), parameters={"experiment_id": "exp-nobody"})
    assert post(worker, execution_event(unknown, "complete", at(0.3)))[0] == 404
    # a Kayenta stage whose scores cannot be read: a note that says so, no verdict row
    canary = stage("Canary Analysis", "kayentaCanary", "TERMINAL", at(0.1), at(0.4), {
        "canaryConfig": {"scoreThresholds": {"pass": "high", "marginal": None}}, "intervalStageId": "I",
        "canaryScores": "abc"})
    garbled = execution(application, [canary], "TERMINAL", at(0.05), at(0.5), parameters={"experiment_id": experiment})
    status, body = post(worker, stage_event(garbled, canary, "failed", at(0.4)))
    assert status == 202 and "score unreadable" in body["text"]
    assert worker.sql(f"SELECT count() FROM hub.canary_verdicts WHERE experiment_id = '{experiment}'") == [[0]]
    # five stage starts that arrive after the canary's end: all placed at its time, in the order they came
    smokes = [stage(f"Smoke {i}", "wait", "SUCCEEDED", at(0.1 + i / 100), at(0.3)) for i in (3, 1, 4, 2, 5)]
    late_run = execution(application, smokes, "SUCCEEDED", at(0.05), at(0.3), parameters={"experiment_id": experiment})
    for smoke in smokes:
        assert post(worker, stage_event(late_run, smoke, "starting", at(0.2)))[1]["late"]
    # a pipeline run entirely after the experiment completed, naming it: recorded, marked after the run
    svc = ExperimentService(worker.settings)
    try:
        svc.command(experiment, lambda s: lifecycle.complete(s, "ana", dt.datetime.now(dt.timezone.utc)))
        ended = svc.get(experiment).ended_at
    finally:
        svc.close()
    time.sleep(0.5)
    after = execution(application, [], "SUCCEEDED", ended + dt.timedelta(seconds=0.2), ended + dt.timedelta(seconds=0.4),
                      parameters={"experiment_id": experiment})
    status, body = post(worker, execution_event(after, "complete", ended + dt.timedelta(seconds=0.5)))
    assert status == 202 and "after-run" in body["tags"] and body["after_run"]["seconds"] == pytest.approx(0.4, abs=0.002)
    assert "[after the run: 0.400s after the experiment ended at" in body["text"]

    recorded = [n.text for n in notes(worker, experiment)]
    assert [t.split(" (execution")[0].split("'")[-2] for t in recorded[1:6]] == [s["name"] for s in smokes]
    worker.wait_for(f"SELECT count() FROM hub.experiment_notes WHERE experiment_id = '{experiment}'", len(recorded))
    report = build_report(experiment, lambda sql: worker.stack.api("/v1/sql", {"query": sql}, timeout=60), "hub")
    assert [n["text"] for n in report.notes] == recorded


def test_the_report_keeps_the_log_order_of_notes_stamped_with_the_same_time(store):
    """Late events all land at the time of the event they follow; the report lists them as the log has
    them (``hub history``'s order), whatever order the store reads its rows in."""
    from hub.experiments.events import EVENT_COLUMNS, event_row
    from hub.report.build import build_report
    from hub.sql import run_readonly

    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    t0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)
    state = lifecycle.apply(None, event := lifecycle.create(
        parse_definition(DEFINITION.format(id=experiment, service="patients")), "ana", t0))
    events = [event]
    for new in [lifecycle.start(state, "ana", t0, force=True)] + [None] * 6:
        for e in new if new is not None else [lifecycle.add_note(state, f"late stage start {len(events)}", "spinnaker",
                                                                    t0 + dt.timedelta(seconds=30), tags=["late"])]:
            state = lifecycle.apply(state, e)
            events.append(e)
    table = f"{store.database}.experiment_events"
    store.command(f"SYSTEM STOP MERGES {table}")
    try:
        for e in reversed(events):  # one insert each, newest first: the store's parts are not in the log's order
            store.insert(table, [event_row(e)], EVENT_COLUMNS)
        report = build_report(experiment, lambda sql: run_readonly(store, sql), store.database)
    finally:
        store.command(f"SYSTEM START MERGES {table}")
    assert [n["text"] for n in report.notes] == [n.text for n in state.notes]
    assert len({n["time"] for n in report.notes}) == 1
