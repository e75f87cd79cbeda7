"""Fault attribution ranks harm, on the real ClickHouse engine (chDB): while a fault is active one
route fails, one gets slower, and one gets faster. The failed route comes first, the slower one
second (regressions, ranked by effect size); the route whose p95 improved is not ranked among them
but listed apart as an improvement, also in the report's fault section."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from hub.questions import ask
from hub.report.build import Report
from hub.report.render import layout, to_markdown
from hub.sql import run_readonly

pytestmark = [pytest.mark.clickhouse]

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone.utc)
COLUMNS = ("event_id", "event_time", "experiment_id", "phase", "correlation_id", "leg", "gateway", "route", "method",
           "backend", "status", "latency_ms", "response_hash", "error", "source")


def legs(experiment: str, phase: str, start: dt.datetime, route: str, n: int, errors: int, latency_ms: float):
    return [(uuid.uuid4(), start + dt.timedelta(milliseconds=10 * i), experiment, phase, uuid.uuid4().hex, "primary",
             "edge", route, "GET", "patients-v1", 503 if i < errors else 200, latency_ms + (i % 5), "", "", "/test")
            for i in range(n)]


def event(experiment: str, sequence: int, kind: str, at: dt.datetime, payload: dict):
    return (experiment, sequence, uuid.uuid4(), kind, at, "ana", "injection", json.dumps(payload), 1)


def test_the_failed_route_ranks_first_and_an_improvement_is_listed_apart(store):
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    fault_start, fault_end = T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=10)
    rows = []
    for route, latency in (("/patients/{id}", 13.0), ("/appointments", 20.0), ("/invoices", 30.0)):
        rows += legs(experiment, "baseline", T0, route, 200, 0, latency)
    rows += legs(experiment, "injection", fault_start, "/patients/{id}", 200, 0, 5.0)   # p95 improved, no errors
    rows += legs(experiment, "injection", fault_start, "/appointments", 200, 15, 20.0)   # failed
    rows += legs(experiment, "injection", fault_start, "/invoices", 200, 0, 45.0)        # slower
    store.insert(f"{store.database}.requests", rows, COLUMNS)
    store.insert(f"{store.database}.experiment_events", [
        event(experiment, 1, "fault_injected", fault_start,
              {"fault_id": "db-down", "action": "stop-db", "target": "patients-db", "injector": "ana"}),
        event(experiment, 2, "fault_removed", fault_end, {"fault_id": "db-down"})],
        ("experiment_id", "sequence", "event_id", "kind", "time", "actor", "phase", "payload", "accepted"))

    result = ask("fault-attribution", {"experiment": experiment}, store.database, lambda sql: run_readonly(store, sql))
    found = [dict(zip(result["columns"], r)) for r in result["rows"]]
    assert [(r["route"], r["direction"], r["rank"]) for r in found] == [
        ("/appointments", "regression", 1), ("/invoices", "regression", 2), ("/patients/{id}", "improvement", 1)]
    failed, slower, faster = found
    assert failed["effect_size"] == failed["cohens_h"] > slower["effect_size"] == slower["p95_log_ratio"] > 0
    assert faster["p95_log_ratio"] < 0 and faster["effect_size"] == -faster["p95_log_ratio"]

    fault = {"fault_id": "db-down", "action": "stop-db", "target": "patients-db", "injector": "ana",
             "injected_by": "ana", "parameters": "{}", "start": fault_start.timestamp(), "end": fault_end.timestamp()}
    report = Report(experiment_id=experiment, database=store.database,
                    experiment={"title": "Patients ride out a database outage", "status": "completed",
                                "started_at": T0.timestamp(), "ended_at": fault_end.timestamp()},
                    definition={}, phases=[], per_phase=[], measurements=[], series=[], bucket_seconds=10.0,
                    faults=[fault], attribution={"db-down": found}, alerts=[], actions=[], timeline=[], notes=[],
                    shadow={"available": False, "message": "no shadow comparisons"})
    text = to_markdown(layout(report, {}))
    assert "Fault db-down (stop-db on patients-db) hurt route `/appointments` most" in text
    section = text.split("### db-down: stop-db on patients-db", 1)[1]
    worse, better = section.split("Routes that got better", 1)
    assert [line.split("|")[2].strip() for line in worse.splitlines() if line.startswith("| ")][1:] == [
        "`/appointments`", "`/invoices`"]
    assert "`/patients/{id}`" not in worse
    assert "`/patients/{id}`" in better.split("\n\n", 2)[1]
    # the improvement moved further than the failure did: ranked by size alone it would come first
    assert faster["effect_size"] > failed["effect_size"]
