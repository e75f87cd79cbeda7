"""The Spinnaker webhook's reading of Echo events, on events in the shape Echo and Orca send them
(built by tests/spinnaker_events.py; its docstring names the source files the shape comes from)."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.integrations import spinnaker
from tests.spinnaker_events import DEFINITION, execution, execution_event, flattened, stage, stage_event, wrapped

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def sec(n: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=n)


def started(id: str, at: dt.datetime):
    definition = parse_definition(DEFINITION.format(id=id, service="patients"))
    state = lifecycle.apply(None, lifecycle.create(definition, "ana", at))
    state = lifecycle.apply(state, lifecycle.check_prerequisites(state, [], "ana", at))
    for event in lifecycle.start(state, "ana", at):
        state = lifecycle.apply(state, event)
    return state


def test_stage_events_carry_the_stage_time_and_pipeline_events_the_execution_times():
    smoke = stage("Smoke test", "wait", "SUCCEEDED", sec(10), sec(40))
    run = execution("patients", [smoke], "SUCCEEDED", sec(5), sec(50))
    assert spinnaker.parse_event(stage_event(run, smoke, "starting", sec(90))).at == sec(10)
    assert spinnaker.parse_event(stage_event(run, smoke, "complete", sec(90))).at == sec(40)
    # pipeline events: the execution's start and end, not details.created (the time Orca sent it)
    assert spinnaker.parse_event(execution_event(run, "starting", sec(90))).at == sec(5)
    assert spinnaker.parse_event(execution_event(run, "complete", sec(90))).at == sec(50)


def test_a_late_event_is_placed_after_the_later_ones_and_says_how_late():
    state = started("exp-late", sec(0))
    state = lifecycle.apply(state, lifecycle.add_note(state, "pipeline failed", "spinnaker", sec(60)))
    at, late = spinnaker.placement(state, sec(30), arrived=sec(61))
    assert (at, late) == (sec(60), 30.0)
    assert spinnaker.placement(state, sec(70), arrived=sec(71)) == (sec(70), 0.0)
    assert spinnaker.placement(state, sec(90), arrived=sec(71)) == (sec(71), 0.0)  # never after its arrival


def test_the_experiment_is_the_one_running_at_the_event_time():
    early = started("exp-early", sec(0))
    early = lifecycle.apply(early, lifecycle.complete(early, "ana", sec(100)))
    late = started("exp-later", sec(200))
    run = execution("patients", [], "SUCCEEDED", sec(20), sec(80))
    finished = execution_event(run, "complete", sec(250))  # arrives while exp-later runs
    assert spinnaker.spinnaker_event_to_note(finished, [early, late])[0] == "exp-early"
    assert spinnaker.spinnaker_event_to_note(finished, [late])[0] is None  # it ended before exp-later began
    run2 = execution("patients", [], "SUCCEEDED", sec(210), sec(230))
    assert spinnaker.spinnaker_event_to_note(execution_event(run2, "complete", sec(231)), [early, late])[0] == "exp-later"


def kayenta_pipeline(status="TERMINAL", scores=(95.0, 62.0)):
    parent = stage("Canary Analysis", "kayentaCanary", status, sec(10), sec(400), {
        "canaryConfig": {"scoreThresholds": {"pass": 75, "marginal": 50}, "lifetimeDuration": "PT6M"},
        "intervalStageId": "I", "canaryScores": list(scores),
        "canaryScoreMessage": f"Final canary score {scores[-1]} is below the pass score threshold."})
    intervals = stage("Run Canary Intervals", "runCanaryIntervals", "SUCCEEDED", sec(10), sec(390),
                      synthetic_owner="STAGE_BEFORE", parent=parent["id"])
    warmup = stage("Warmup Wait", "wait", "SUCCEEDED", sec(10), sec(70), {"waitTime": 60},
                   synthetic_owner="STAGE_BEFORE", parent=intervals["id"])
    runs = [stage(f"Run Canary #{i + 1}", "runCanary", "SUCCEEDED", sec(100 + 100 * i), sec(190 + 100 * i),
                  {"canaryScore": s}, synthetic_owner="STAGE_BEFORE", parent=intervals["id"])
            for i, s in enumerate(scores)]
    return execution("patients", [parent, intervals, warmup, *runs], "TERMINAL", sec(0), sec(410)), parent, warmup


def test_a_failed_kayenta_stage_is_a_surprise_with_the_score_and_message():
    run, parent, _ = kayenta_pipeline()
    experiment_id, note = spinnaker.spinnaker_event_to_note(stage_event(run, parent, "failed", sec(401)),
                                                            [started("exp-k", sec(0))])
    assert experiment_id == "exp-k"
    assert note["note_kind"] == "surprise"
    assert "stage 'Canary Analysis' (kayentaCanary) failed" in note["text"]
    assert "Kayenta canary verdict fail, score 62 (thresholds: pass 75, marginal 50)" in note["text"]
    assert note["actual"] == "Final canary score 62.0 is below the pass score threshold."
    assert {"failed", "canary", "kayenta", "kayenta-fail", "kayentaCanary"} <= set(note["tags"])
    assert note["kayenta"] == {"verdict": "fail", "score": 62.0, "scores": [95.0, 62.0], "pass": 75, "marginal": 50,
                               "message": "Final canary score 62.0 is below the pass score threshold."}
    passed, parent, _ = kayenta_pipeline("SUCCEEDED", (80.0, 90.0))
    _, note = spinnaker.spinnaker_event_to_note(stage_event(passed, parent, "complete", sec(401)))
    assert note["kayenta"]["verdict"] == "pass" and note["note_kind"] == "observation"


def test_exception_errors_and_cancellation_are_the_reason():
    deploy = stage("Deploy", "deploy", "TERMINAL", sec(1), sec(9), {"exception": {
        "details": {"errors": ["Server group patients-v042 did not become healthy"], "error": "Unexpected Task Failure"}}})
    run = execution("patients", [deploy], "TERMINAL", sec(0), sec(10), parameters={"experiment_id": "exp-x"})
    _, note = spinnaker.spinnaker_event_to_note(stage_event(run, deploy, "failed", sec(10)))
    assert note["text"].endswith(": Server group patients-v042 did not become healthy")
    assert note["actual"] == "Server group patients-v042 did not become healthy"
    _, note = spinnaker.spinnaker_event_to_note(execution_event(run, "failed", sec(11)))
    assert note["note_kind"] == "surprise" and "failed" in note["tags"]
    assert note["actual"] == "stage 'Deploy': Server group patients-v042 did not become healthy"
    canceled = execution("patients", [], "CANCELED", sec(0), sec(10), parameters={"experiment_id": "exp-x"},
                         canceled=True, canceled_by="bob@example.org", cancellation_reason="wrong build")
    _, note = spinnaker.spinnaker_event_to_note(execution_event(canceled, "failed", sec(11)))
    assert note["text"].endswith("was canceled (execution %s): canceled by bob@example.org: wrong build" % canceled["id"])
    assert "canceled" in note["tags"]


def test_the_stage_own_status_and_type_decide_what_the_note_says():
    smoke = stage("Smoke test", "runJob", "FAILED_CONTINUE", sec(1), sec(5),
                  {"failPipeline": False, "exception": {"details": {"errors": ["2 of 40 checks failed"]}}})
    run = execution("patients", [smoke], "RUNNING", sec(0), parameters={"experiment_id": "exp-x"})
    _, note = spinnaker.spinnaker_event_to_note(stage_event(run, smoke, "failed", sec(5)))  # Orca says "failed"
    assert note["text"].startswith("Spinnaker pipeline 'deploy-patients' stage 'Smoke test' (runJob) failed "
                                   "(the pipeline went on)")
    assert {"runJob", "failed-continue"} <= set(note["tags"])
    stopped = stage("Manual judgment", "manualJudgment", "CANCELED", sec(1), sec(5))
    run = execution("patients", [stopped], "CANCELED", sec(0), parameters={"experiment_id": "exp-x"},
                    canceled=True, canceled_by="ana@example.org")
    _, note = spinnaker.spinnaker_event_to_note(stage_event(run, stopped, "failed", sec(5)))
    assert "stage 'Manual judgment' (manualJudgment) was canceled" in note["text"]
    assert note["note_kind"] == "observation" and "failed" not in note["tags"]


def test_synthetic_stages_are_folded_into_the_parent():
    run, parent, warmup = kayenta_pipeline()
    experiments = [started("exp-k", sec(0))]
    experiment_id, note = spinnaker.spinnaker_event_to_note(stage_event(run, warmup, "complete", sec(71)), experiments)
    assert experiment_id is None and "synthetic stage 'Warmup Wait' is folded into its parent" in note["ignored"]
    experiment_id, note = spinnaker.spinnaker_event_to_note(stage_event(run, warmup, "complete", sec(71)), experiments,
                                                            synthetic=True)
    assert experiment_id == "exp-k" and "synthetic" in note["tags"]
    # a failed synthetic stage's error shows in the parent's note
    deploy = stage("Deploy canary", "deploy", "TERMINAL", sec(1), sec(9), {})
    sub = stage("createServerGroup", "createServerGroup", "TERMINAL", sec(1), sec(8),
                {"exception": {"details": {"errors": ["quota exceeded"]}}}, synthetic_owner="STAGE_BEFORE",
                parent=deploy["id"])
    run = execution("patients", [deploy, sub], "TERMINAL", sec(0), parameters={"experiment_id": "exp-x"})
    _, note = spinnaker.spinnaker_event_to_note(stage_event(run, deploy, "failed", sec(9)))
    assert note["actual"] == "createServerGroup: quota exceeded"


def test_the_note_id_comes_from_the_event_id():
    run = execution("patients", [], "SUCCEEDED", sec(0), sec(9), parameters={"experiment_id": "exp-x"})
    event = execution_event(run, "complete", sec(10))
    first = spinnaker.spinnaker_event_to_note(event)[1]["note_id"]
    assert first and first == spinnaker.spinnaker_event_to_note(dict(event))[1]["note_id"]
    assert first != spinnaker.spinnaker_event_to_note(dict(event, eventId="another"))[1]["note_id"]


def test_wrapped_and_flattened_bodies_and_orchestration_descriptions():
    run = execution("patients", [], "SUCCEEDED", sec(0), sec(9), parameters={"experiment_id": "exp-x"})
    event = execution_event(run, "complete", sec(10))
    plain = spinnaker.spinnaker_event_to_note(event)
    for body in (flattened(event), wrapped(event), wrapped(event, field="event", name="gameday"),
                 wrapped(flattened(event))):
        assert spinnaker.spinnaker_event_to_note(body) == plain
    task = execution("patients", [], "SUCCEEDED", sec(0), sec(9), type="ORCHESTRATION", name=None,
                     description="Resize server group patients-v042 to 0", parameters={"experiment_id": "exp-x"})
    _, note = spinnaker.spinnaker_event_to_note(execution_event(task, "complete", sec(10)))
    assert note["text"] == (f"Spinnaker orchestration 'Resize server group patients-v042 to 0' completed "
                            f"(execution {task['id']})")
    for bad in ({"eventName": "x", "payload": "not json"}, {"details": "{", "content": {}}):
        with pytest.raises(spinnaker.NotSpinnakerEvent):
            spinnaker.spinnaker_event_to_note(bad)


def test_events_from_other_sources_are_ignored():
    run = execution("patients", [], "SUCCEEDED", sec(0), sec(9), parameters={"experiment_id": "exp-x"})
    event = execution_event(run, "complete", sec(10))
    assert spinnaker.spinnaker_event_to_note(event)[0] == "exp-x"
    for source in ("igor", "gate", "ORCA-proxy"):
        experiment_id, note = spinnaker.spinnaker_event_to_note(dict(event, details=dict(event["details"],
                                                                                          source=source)))
        assert experiment_id is None and note == {
            "ignored": f"events from {source!r} are not recorded (Orca's pipeline and stage events are)"}
    assert spinnaker.spinnaker_event_to_note(dict(event, details=dict(event["details"], source="Orca")))[0] == "exp-x"


def test_an_error_given_as_a_string_is_one_error():
    deploy = stage("Deploy", "deploy", "TERMINAL", sec(1), sec(9),
                   {"exception": {"details": {"errors": "not-a-list of errors"}}})
    run = execution("patients", [deploy], "TERMINAL", sec(0), sec(10), parameters={"experiment_id": "exp-x"})
    _, note = spinnaker.spinnaker_event_to_note(stage_event(run, deploy, "failed", sec(10)))
    assert note["actual"] == "not-a-list of errors"


def test_an_experiment_id_that_is_not_a_string_is_refused():
    for value in (12, ["exp-x"], {"id": "exp-x"}, True):
        run = execution("patients", [], "SUCCEEDED", sec(0), sec(9), parameters={"experiment_id": value})
        with pytest.raises(spinnaker.NotSpinnakerEvent, match="experiment_id must be a string"):
            spinnaker.spinnaker_event_to_note(execution_event(run, "complete", sec(10)), [started("exp-k", sec(0))])


def test_an_unreadable_kayenta_score_is_said_and_is_no_verdict():
    run, parent, _ = kayenta_pipeline()
    parent["context"].update(canaryScores="abc", canaryConfig={"scoreThresholds": {"pass": "high", "marginal": None}})
    for child in run["stages"]:
        child["context"].pop("canaryScore", None)
    _, note = spinnaker.spinnaker_event_to_note(stage_event(run, parent, "failed", sec(401)))
    assert note["kayenta"]["score"] is None and note["kayenta"]["pass"] is None
    assert 'Kayenta canary verdict fail, score unreadable: canaryScores "abc" is not a list of numbers' in note["text"]


def test_an_event_after_the_experiment_ended_is_marked():
    state = started("exp-done", sec(0))
    state = lifecycle.apply(state, lifecycle.complete(state, "ana", sec(100)))
    assert spinnaker.after_run(state, sec(160)) == 60.0
    assert spinnaker.after_run(state, sec(100)) is None and spinnaker.after_run(started("exp-on", sec(0)), sec(160)) is None
