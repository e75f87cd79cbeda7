"""Placing records on experiments and phases: explicit ids, targets and time windows, overlaps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import msgspec

from hub.experiments import lifecycle as lc
from hub.experiments.correlate import TargetIndex, correlate_request_rows, correlate_span_rows
from hub.experiments.definition import parse_definition
from hub.otel.decode import TRACE_COLUMNS
from hub.records.request_leg import REQUEST_COLUMNS

UTC = timezone.utc
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

BASE = """
title: {title}
scenario: s
hypothesis: h
expected_outcome: e
steady_state: [{{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}]
environment: {{name: staging, kind: non-live, risk: low}}
targets: {targets}
phases: [{{name: baseline, planned_minutes: 1}}, {{name: injection, planned_minutes: 1}}]
"""


def run(experiment_id: str, targets: str, start_min: float, inject_min: float, end_min: float | None):
    definition = parse_definition(BASE.format(title=experiment_id, targets=targets))
    definition = msgspec.structs.replace(definition, id=experiment_id)
    at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
    state = lc.apply(None, lc.create(definition, "ana", at(0)))
    for event in lc.start(state, "ana", at(start_min), force=True):
        state = lc.apply(state, event)
    state = lc.apply(state, lc.change_phase(state, "injection", "ana", at(inject_min)))
    if end_min is not None:
        state = lc.apply(state, lc.complete(state, "ana", at(end_min)))
    return state


def request_row(t: datetime, gateway="gw-a", route="/patients/{id}", backend="patients-v1", experiment="", phase=""):
    values = {c: "" for c in REQUEST_COLUMNS}
    values.update(event_id=uuid.uuid4(), event_time=t, experiment_id=experiment, phase=phase, gateway=gateway,
                  route=route, backend=backend, status=200, latency_ms=1.0, request_bytes=0, response_bytes=0)
    return tuple(values[c] for c in REQUEST_COLUMNS)


def columns(row):
    return dict(zip(REQUEST_COLUMNS, row))


def test_records_are_placed_by_target_and_event_time_into_the_right_phase():
    index = TargetIndex([run("exp-a", "{gateways: [gw-a]}", 1, 5, 10)])
    rows = [request_row(T0 + timedelta(minutes=m)) for m in (0.5, 1, 4.99, 5, 9.99, 10, 11)]
    placed = [(columns(r)["experiment_id"], columns(r)["phase"]) for r in correlate_request_rows(index, rows)]
    assert placed == [("", ""), ("exp-a", "baseline"), ("exp-a", "baseline"), ("exp-a", "injection"),
                      ("exp-a", "injection"), ("", ""), ("", "")]


def test_other_targets_are_left_alone_and_unchanged_rows_keep_their_identity():
    index = TargetIndex([run("exp-a", "{routes: ['/patients/{id}']}", 1, 5, None)])
    row = request_row(T0 + timedelta(minutes=2), route="/billing")
    [out] = correlate_request_rows(index, [row])
    assert out is row


def test_an_explicit_experiment_id_wins_and_gets_its_phase_from_the_timeline():
    index = TargetIndex([run("exp-a", "{gateways: [gw-a]}", 1, 5, None), run("exp-b", "{gateways: [gw-z]}", 1, 3, None)])
    [out] = correlate_request_rows(index, [request_row(T0 + timedelta(minutes=4), experiment="exp-b")])
    assert (columns(out)["experiment_id"], columns(out)["phase"]) == ("exp-b", "injection")
    [kept] = correlate_request_rows(index, [request_row(T0 + timedelta(minutes=4), experiment="exp-b", phase="custom")])
    assert columns(kept)["phase"] == "custom"


def test_overlapping_experiments_the_one_started_last_claims_the_record():
    broad = run("exp-broad", "{gateways: [gw-a]}", 1, 20, None)
    narrow = run("exp-narrow", "{backends: [patients-v1]}", 3, 4, 6)
    index = TargetIndex([broad, narrow])
    rows = [request_row(T0 + timedelta(minutes=m)) for m in (2, 3.5, 4.5, 7)]
    placed = [columns(r)["experiment_id"] for r in correlate_request_rows(index, rows)]
    assert placed == ["exp-broad", "exp-narrow", "exp-narrow", "exp-broad"]


def test_spans_are_placed_by_service():
    index = TargetIndex([run("exp-s", "{services: [patients-api]}", 1, 5, None)])
    values = {c: "" for c in TRACE_COLUMNS}
    values["Timestamp"] = int((T0 + timedelta(minutes=6)).timestamp() * 1e9)
    values["ServiceName"] = "patients-api"
    row = tuple(values[c] for c in TRACE_COLUMNS)
    [out] = correlate_span_rows(index, [row])
    placed = dict(zip(TRACE_COLUMNS, out, strict=True))
    assert (placed["ExperimentId"], placed["ExperimentPhase"]) == ("exp-s", "injection")


def test_batch_placement_equals_placing_each_row_alone():
    """correlate_request_rows (which caches candidate windows per batch) places every row exactly
    as TargetIndex.place does on its own, with overlapping experiments on shared targets."""
    import random

    rnd = random.Random(5)
    states = [run("exp-a", "{gateways: [gw-a]}", 1, 5, 10), run("exp-b", "{routes: ['/patients/{id}']}", 3, 6, None),
              run("exp-c", "{backends: [patients-v1], gateways: [gw-b]}", 3, 4, 8),
              run("exp-d", "{gateways: [gw-a, gw-b]}", 7, 9, 12)]
    index = TargetIndex(states)
    rows = [request_row(T0 + timedelta(minutes=rnd.uniform(0, 14)), gateway=rnd.choice(["gw-a", "gw-b", "gw-c"]),
                        route=rnd.choice(["/patients/{id}", "/other"]), backend=rnd.choice(["patients-v1", "x"]),
                        experiment=rnd.choice(["", "", "", "exp-b"]), phase=rnd.choice(["", "", "manual"]))
            for _ in range(3000)]
    batch = correlate_request_rows(index, rows)
    for row, placed in zip(rows, batch):
        c = columns(row)
        expected = index.place(c["event_time"], c["experiment_id"], c["phase"],
                               (("gateways", c["gateway"]), ("routes", c["route"]), ("backends", c["backend"])))
        assert (columns(placed)["experiment_id"], columns(placed)["phase"]) == expected
    assert {columns(p)["experiment_id"] for p in batch} >= {"exp-a", "exp-b", "exp-c", "exp-d", ""}
