"""Each seed tool's converter on that tool's real output (samples in tests/data/tools/, see its README)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from pathlib import Path

import pytest

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.integrations import chaostoolkit, dropwizard, spinnaker, vegeta
from hub.otel.decode import decode_metrics
from hub.records.decode import RawMessage

TOOLS = Path(__file__).resolve().parents[1] / "data" / "tools"
UTC = dt.timezone.utc


def sample(name: str):
    return json.loads((TOOLS / name).read_text())


def oozie_document() -> dict:
    """The Oozie documentation's /admin/metrics response, with its '...' elisions taken out."""
    text = (TOOLS / "dropwizard-oozie-admin-metrics.txt").read_text()
    text = "\n".join(line for line in text.splitlines() if line.strip() != "...")
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


DEFINITION = """
id: {id}
title: Patient API survives a Redis outage
scenario: Stop Redis while traffic flows.
hypothesis: The API keeps answering.
expected_outcome: Health stays 200.
steady_state:
  - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}
environment: {{name: staging, kind: non-live, risk: low}}
targets:
  services: [{service}]
"""


def experiment(at: dt.datetime, id: str = "ctk-run", service: str = "hcm", ready: bool = True):
    defn = parse_definition(DEFINITION.format(id=id, service=service))
    state = lifecycle.apply(None, lifecycle.create(defn, "ana", at))
    if ready:
        state = lifecycle.apply(state, lifecycle.check_prerequisites(state, [], "ana", at))
    return state


# ---- Vegeta ---------------------------------------------------------------------------------------
def legs(lines, **kw):
    return [json.loads(v) for _, v in vegeta.vegeta_to_legs(lines, experiment_id="exp-1", **kw)]


def test_vegeta_encode_lines_become_primary_legs_tagged_to_the_experiment():
    events = legs((TOOLS / "vegeta-encode.jsonl").read_bytes().splitlines())
    assert len(events) == 5
    first = events[0]
    assert first["source"] == "/vegeta" and first["experimentid"] == "exp-1"
    d = first["data"]
    assert d["leg"] == "primary" and d["gateway"] == "vegeta" and d["experiment_id"] == "exp-1"
    assert (d["method"], d["route"], d["backend"], d["status"]) == ("POST", "/app/log/private", "127.82.156.156:32923", 200)
    assert d["latency_ms"] == pytest.approx(117.952597)  # 117952597 ns
    assert (d["request_bytes"], d["response_bytes"]) == (38, 4)  # bytes_out, bytes_in
    assert d["event_time"] == "2022-03-22T12:17:51.942008Z"
    assert len(d["response_hash"]) == 16 and "body" not in json.dumps(first)  # the body itself is never kept
    # an older vegeta line (no method/url) and its transport error: status 0, error kept, offset applied
    d = events[1]["data"]
    assert (d["status"], d["method"], d["route"], d["backend"]) == (0, "GET", "/", "unknown")
    assert d["error"].startswith("Get http://localhost:10000/headers: dial tcp")
    assert d["event_time"] == "2019-11-04T07:46:16.885395Z"
    assert [e["data"]["status"] for e in events[2:]] == [200, 500, 0]
    assert events[4]["data"]["error"] == "dial tcp: connection refused"
    assert len({e["data"]["correlation_id"] for e in events}) == 5


def test_vegeta_drops_query_strings_and_identifiers_and_applies_route_templates():
    line = json.loads((TOOLS / "vegeta-encode.jsonl").read_text().splitlines()[0])
    line["url"] = "https://api.example/patients/123456/notes?name=Jane+Doe&dob=1970-01-01"
    raw = json.dumps(line).encode()
    d = legs([raw])[0]["data"]
    assert d["route"] == "/patients/{id}/notes"
    assert "Jane" not in json.dumps(legs([raw])) and "1970" not in json.dumps(d)
    d = legs([raw], route_of=vegeta.route_matcher(["/patients/{patient}/notes"]))[0]["data"]
    assert d["route"] == "/patients/{patient}/notes"
    d = legs([raw], gateway="edge-eu-1", backend="patients")[0]["data"]
    assert (d["gateway"], d["backend"]) == ("edge-eu-1", "patients")


def test_vegeta_refuses_what_is_not_a_result():
    with pytest.raises(vegeta.VegetaLineError, match="line 2"):
        legs([b"", b'{"latencies": {"total": 1}}'])


# ---- Dropwizard -------------------------------------------------------------------------------------
def decoded(request):
    return decode_metrics([RawMessage("otlp_metrics", 0, 0, None, request.SerializeToString(), 0)], "otlp_proto", 10**8)


def test_dropwizard_document_maps_each_metric_kind():
    doc = sample("dropwizard-metrics-servlet-3.0.0.json")
    request = dropwizard.dropwizard_to_otlp(doc, service="patients", experiment_id="exp-1", now_ns=2_000, start_ns=1_000)
    batch = decoded(request)
    assert batch.invalid == []
    gauges = {r[8]: r for r in batch.gauge}
    sums = {r[8]: r for r in batch.sum}
    summaries = {r[8]: r for r in batch.summary}
    # gauges: numbers, NaN included (Jackson writes it "NaN"); "None" and the deadlock list are no numbers
    assert gauges["jvm.memory.heap.used"][14] == 16464552.0
    assert math.isnan(gauges["jvm.fd.usage"][14]) and "jvm.thread-states.deadlocks" not in gauges
    assert "net.sf.ehcache.Cache.cacheName.accuracy" not in gauges
    # counters: cumulative, not monotonic (Dropwizard counters go down too)
    active = sums["com.codahale.metrics.servlet.AbstractInstrumentedFilter.activeRequests"]
    assert active[14] == 1.0 and active[-4:] == (2, False, "exp-1", "")
    # meters: a monotonic count plus rate gauges in the meter's unit
    ok = "com.codahale.metrics.servlet.AbstractInstrumentedFilter.responseCodes.ok"
    assert sums[ok][14] == 12.0 and sums[ok][-3] is True and sums[ok][10] == "{event}"
    assert gauges[ok + ".m1_rate"][14] == pytest.approx(0.011987385129439698)
    assert gauges[ok + ".m1_rate"][10] == "{event}/s"
    # timers: a summary in the duration unit with quantiles, min/max/mean/stddev gauges, rates
    timer = "com.codahale.metrics.servlet.AbstractInstrumentedFilter.requests"
    row = summaries[timer]
    assert row[10] == "s" and row[14] == 12 and row[15] == pytest.approx(0.11827764908333334 * 12)
    assert row[16] == [0.5, 0.75, 0.95, 0.98, 0.99, 0.999]
    assert row[17][0] == pytest.approx(0.08721737)
    assert gauges[timer + ".min"][14] == pytest.approx(7.255120000000001e-4)
    assert gauges[timer + ".mean_rate"][10] == "{call}/s"
    # the resource and times
    assert row[0] == {"service.name": "patients", "experiment.id": "exp-1"} and row[7] == "patients"
    assert (row[12], row[13]) == (1_000, 2_000) and row[-2] == "exp-1"
    assert len(summaries) == 4 and len(sums) == 2 + 7


def test_dropwizard_histograms_and_millisecond_timers():
    batch = decoded(dropwizard.dropwizard_to_otlp(oozie_document(), service="oozie", now_ns=5))
    summaries = {r[8]: r for r in batch.summary}
    hist = summaries["callablequeue.threads.active.histogram"]
    assert hist[14] == 48 and hist[15] == pytest.approx(3.0) and hist[17] == [0, 0, 1, 1, 1, 1]
    timer = summaries["commands.action.end.call.timer"]
    assert timer[10] == "ms" and timer[14] == 4
    gauges = {r[8]: r for r in batch.gauge}
    assert gauges["commands.action.end.call.timer.m1_rate"][10] == "{call}/ms"
    assert gauges["jvm.memory.non-heap.committed"][14] == 62590976.0 and "oozie.mode" not in gauges
    assert {r[8] for r in batch.sum} == {"commands.job.info.executions", "jpa.CoordJobsGetPendingJPAExecutor",
                                         "jpa.GET_WORKFLOW"}


def test_dropwizard_refuses_other_documents():
    with pytest.raises(Exception, match="not a Dropwizard metrics document"):
        dropwizard.dropwizard_to_otlp({"status": "UP"}, service="x")


# ---- Spinnaker --------------------------------------------------------------------------------------
def test_spinnaker_stage_event_matched_by_application_becomes_an_observation():
    payload = sample("spinnaker-stage-complete.json")
    at = dt.datetime(2018, 2, 9, 22, 0, tzinfo=UTC)
    state = experiment(at, "hcm-gameday")
    for event in lifecycle.start(state, "ana", at):
        state = lifecycle.apply(state, event)
    other = experiment(at, "other-gameday", service="payments")
    experiment_id, note = spinnaker.spinnaker_event_to_note(payload, [other, state])
    assert experiment_id == "hcm-gameday"
    assert {k: note[k] for k in ("text", "note_kind", "tags")} == {
        "text": "Spinnaker pipeline 'hcm pipeline' stage '(unnamed)' completed (execution 88ebc19f-43bc-460c-9de5-2347b48f8efb)",
        "note_kind": "observation", "tags": ["spinnaker", "hcm", "orca:stage:complete"]}
    assert spinnaker.event_time(payload) == dt.datetime.fromtimestamp(1518214003.420, UTC)
    # nothing running for that application: ignored, with the reason
    experiment_id, note = spinnaker.spinnaker_event_to_note(payload, [other])
    assert experiment_id is None and "no experiment matches" in note["ignored"]


def test_spinnaker_pipeline_parameter_names_the_experiment_and_pipeline_events_read_well():
    payload = sample("spinnaker-stage-complete.json")
    payload["content"]["execution"]["trigger"]["parameters"]["experiment_id"] = "patient-api-failover"
    payload["content"]["name"] = "Deploy canary"  # Orca >= 1.x sends the stage name in content.name
    experiment_id, note = spinnaker.spinnaker_event_to_note(payload)
    assert experiment_id == "patient-api-failover"
    assert note["text"].startswith("Spinnaker pipeline 'hcm pipeline' stage 'Deploy canary' completed")
    pipeline = copy.deepcopy(payload)
    pipeline["details"]["type"] = "orca:pipeline:failed"
    _, note = spinnaker.spinnaker_event_to_note(pipeline)
    assert note["text"] == "Spinnaker pipeline 'hcm pipeline' failed (execution 88ebc19f-43bc-460c-9de5-2347b48f8efb)"
    assert note["tags"] == ["spinnaker", "hcm", "orca:pipeline:failed", "failed"]
    task = copy.deepcopy(payload)
    task["details"]["type"] = "orca:task:complete"
    assert spinnaker.spinnaker_event_to_note(task)[0] is None


def test_spinnaker_refuses_payloads_that_are_not_events():
    for bad in ({}, [], {"details": {}, "content": {}}, {"details": {"type": "x"}}):
        with pytest.raises(spinnaker.NotSpinnakerEvent):
            spinnaker.spinnaker_event_to_note(bad)


# ---- Chaos Toolkit ----------------------------------------------------------------------------------
def kinds(events):
    return [e.__struct_config__.tag for e in events]


def test_completed_journal_becomes_the_timeline_with_the_journal_times():
    journal = sample("chaostoolkit-journal-completed.json")
    state = experiment(dt.datetime(2025, 4, 25, tzinfo=UTC))
    events, problems = chaostoolkit.journal_events(state, journal, restores=["iniciar_container_redis"])
    assert problems == []
    assert kinds(events) == ["experiment_started", "phase_changed", "note_added", "phase_changed", "fault_injected",
                             "fault_removed", "phase_changed", "experiment_completed"]
    t = chaostoolkit.parse_time
    ms = lambda s: t(s).replace(microsecond=t(s).microsecond // 1000 * 1000)  # noqa: E731 - the log keeps ms
    by_kind = {k: e for k, e in zip(kinds(events), events)}
    assert events[0].time == ms("2025-04-26T00:12:46.036684+00:00")
    fault = by_kind["fault_injected"]
    assert (fault.action, fault.target, fault.injector) == ("parar_container_redis", "docker stop redis", "chaostoolkit")
    assert fault.time == ms("2025-04-26T00:12:46.074813+00:00")
    assert fault.parameters == {"provider": "process", "path": "docker", "arguments": "stop redis"}
    assert by_kind["fault_removed"].time == ms("2025-04-26T00:12:47.130052+00:00")  # end of iniciar_container_redis
    assert [e.phase for e in events if kinds([e]) == ["phase_changed"]] == ["baseline", "injection", "observation"]
    assert events[-1].time == ms("2025-04-26T00:12:47.199491+00:00")
    final = state
    for event in events:
        final = lifecycle.apply(final, event)
    assert final.status == "completed" and final.faults == {}


def test_without_restores_every_method_action_is_a_fault_closed_at_the_end():
    journal = sample("chaostoolkit-journal-completed.json")
    state = experiment(dt.datetime(2025, 4, 25, tzinfo=UTC))
    events, _ = chaostoolkit.journal_events(state, journal)
    assert kinds(events).count("fault_injected") == 2 and kinds(events).count("fault_removed") == 2
    assert kinds(events)[-1] == "experiment_completed"


def test_deviated_journal_gives_a_surprise_and_an_abort():
    journal = sample("chaostoolkit-journal-deviated.json")  # chaoslib 1.9.0: naive UTC times
    state = experiment(dt.datetime(2020, 6, 5, 9, 0, tzinfo=UTC), ready=False)
    events, problems = chaostoolkit.journal_events(state, journal)  # an import starts a draft with force
    assert problems == []
    assert kinds(events) == ["experiment_started", "phase_changed", "note_added", "phase_changed", "fault_injected",
                             "phase_changed", "note_added", "fault_removed", "experiment_aborted"]
    assert events[0].forced is True
    fault = events[4]
    assert fault.action == "terminate-frontend-service"
    assert fault.target == "chaosk8s.pod.actions.terminate_pods (label_selector=run=frontend ns=default)"
    assert fault.time == dt.datetime(2020, 6, 5, 9, 13, 58, 127000, tzinfo=UTC)
    surprise = events[6]
    assert surprise.note_kind == "surprise" and "not met after the method" in surprise.text
    assert surprise.actual.startswith("application-should-be-alive-and-healthy: chaoslib.exceptions.ActivityFailed")
    assert events[7].time == events[8].time == dt.datetime(2020, 6, 5, 9, 13, 58, 373000, tzinfo=UTC)
    assert events[8].reason == "Chaos Toolkit run failed: the steady state deviated after the method"
    assert events[8].by == "chaostoolkit"


def test_control_functions_in_chaos_toolkit_order_record_rollbacks_and_never_raise():
    state = experiment(dt.datetime(2026, 1, 1, tzinfo=UTC))
    timeline = chaostoolkit.LocalTimeline(state)
    recorder = chaostoolkit.Recorder(timeline)
    chaostoolkit._RUN.clear()
    chaostoolkit._RUN["recorder"] = recorder
    try:
        journal = sample("chaostoolkit-journal-deviated.json")
        exp = journal["experiment"]
        action = exp["method"][0]
        rollback = {"type": "action", "name": "restart-frontend",
                    "provider": {"type": "python", "module": "chaosk8s.deployment.actions", "func": "scale_deployment",
                                 "arguments": {"name": "frontend", "replicas": 2}}}
        c = chaostoolkit
        c.before_experiment_control(exp)
        c.before_hypothesis_control(exp["steady-state-hypothesis"])
        c.after_hypothesis_control(exp["steady-state-hypothesis"], state=journal["steady_states"]["before"])
        c.before_method_control(exp)
        c.before_activity_control(action)
        c.after_activity_control(action, state=journal["run"][0])
        c.after_method_control(exp, state=journal["run"])
        c.before_hypothesis_control(exp["steady-state-hypothesis"])
        c.after_hypothesis_control(exp["steady-state-hypothesis"], state={"steady_state_met": True, "probes": []})
        c.before_rollback_control(exp)
        c.before_activity_control(rollback)
        c.after_activity_control(rollback, state={"status": "succeeded", "output": None})
        c.after_rollback_control(exp, state=[])
        c.after_experiment_control(exp, state={"status": "completed", "deviated": False})
        c.after_activity_control(None, state=object())  # nonsense: logged, never raised
    finally:
        chaostoolkit._RUN.clear()
    assert kinds(timeline.events) == ["experiment_started", "phase_changed", "note_added", "phase_changed",
                                      "fault_injected", "phase_changed", "phase_changed", "fault_removed",
                                      "experiment_completed"]
    assert timeline.state().status == "completed"
    assert [p.phase for p in timeline.state().phase_history] == ["baseline", "injection", "observation", "recovery"]
