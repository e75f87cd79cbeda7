"""error-rate-by-phase on a real store (chDB): each occurrence of a phase is its own row in time
order, traffic before the start and after the end is labelled as such; and the legs counted come
from one source (the gateway's when there are any), saying which, so a Vegeta import of the same
traffic is not counted twice."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import msgspec
import pytest

from hub.experiments import lifecycle as L
from hub.experiments.definition import load_definition
from hub.experiments.events import EVENT_COLUMNS, event_row
from hub.questions import ask
from hub.records.request_leg import REQUEST_COLUMNS
from hub.sql import run_readonly

pytestmark = [pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "experiments" / "patient-api-db-failover.yaml"
UTC = dt.timezone.utc
T0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=1)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def store_run(store, eid: str, **changes) -> None:
    """Started at 1, baseline 1-3, injection 3-5, baseline 5-7, injection 7-9, aborted at 9."""
    defn = msgspec.structs.replace(load_definition(EXAMPLE), id=eid, prerequisites=[], **changes)
    events = [L.create(defn, "ana", at(0))]
    state = L.apply(None, events[0])

    def add(new):
        nonlocal state
        for e in new if isinstance(new, list) else [new]:
            state = L.apply(state, e)
            events.append(e)

    add(L.start(state, "ana", at(1), force=True))
    if state.phase != "baseline":
        add(L.change_phase(state, "baseline", "ana", at(1)))
    for minute, phase in ((3, "injection"), (5, "baseline"), (7, "injection")):
        add(L.change_phase(state, phase, "ana", at(minute)))
    add(L.abort(state, "rule fired", "abort-judge/r", at(9)))
    store.insert(f"{store.database}.experiment_events", [event_row(e) for e in events], EVENT_COLUMNS)


def legs(eid: str, minute: float, n: int, errors: int, source: str) -> list[tuple]:
    return [(uuid.uuid4(), at(minute) + dt.timedelta(milliseconds=10 * i), eid, "", uuid.uuid4().hex, "primary",
             "edge-gw", "/patients", "GET", "patient-api", 503 if i < errors else 200, 20.0, 1, 1, "h", "", source)
            for i in range(n)]


def rows_of(result: dict) -> list[dict]:
    return [dict(zip(result["columns"], row)) for row in result["rows"]]


def test_each_phase_occurrence_is_a_row_and_pre_start_and_post_end_are_labelled(store):
    eid = f"ph-{uuid.uuid4().hex[:6]}"
    store_run(store, eid)
    rows = (legs(eid, 0.5, 4, 0, "/hub-gateway/edge-gw") + legs(eid, 2, 10, 1, "/hub-gateway/edge-gw")
            + legs(eid, 4, 10, 5, "/hub-gateway/edge-gw") + legs(eid, 6, 20, 0, "/hub-gateway/edge-gw")
            + legs(eid, 8, 10, 8, "/hub-gateway/edge-gw") + legs(eid, 9.5, 3, 0, "/hub-gateway/edge-gw"))
    store.insert(f"{store.database}.requests", rows, REQUEST_COLUMNS)
    result = rows_of(ask("error-rate-by-phase", {"experiment": eid}, store.database,
                         lambda sql: run_readonly(store, sql)))
    assert [(r["phase"], r["occurrence"], r["requests"], r["errors"]) for r in result] == [
        ("(before start)", 0, 4, 0), ("baseline", 1, 10, 1), ("injection", 1, 10, 5),
        ("baseline", 2, 20, 0), ("injection", 2, 10, 8), ("(after end)", 0, 3, 0)]
    assert [r["is_baseline"] for r in result] == [0, 1, 0, 0, 0, 0]
    assert result[4]["error_rate_change"] == round(0.8 - 0.1, 4)
    assert {r["sources"] for r in result} == {"gateway"}


def test_legs_of_the_gateway_are_counted_once_when_a_vegeta_import_has_the_same_traffic(store):
    eid = f"src-{uuid.uuid4().hex[:6]}"
    store_run(store, eid)
    gateway = legs(eid, 2, 10, 2, "/hub-gateway/edge-gw")
    vegeta = legs(eid, 2, 10, 2, "/vegeta")  # the same requests, as the load tool saw them
    store.insert(f"{store.database}.requests", gateway + vegeta, REQUEST_COLUMNS)

    def phase_rows(**params):
        return rows_of(ask("error-rate-by-phase", {"experiment": eid, **params}, store.database,
                           lambda sql: run_readonly(store, sql)))

    assert [(r["requests"], r["errors"], r["sources"]) for r in phase_rows()] == [(10, 2, "gateway")]
    assert [(r["requests"], r["sources"]) for r in phase_rows(source="vegeta")] == [(10, "vegeta")]
    assert [(r["requests"], r["sources"]) for r in phase_rows(source="all")] == [(20, "gateway, vegeta")]

    # Without gateway legs, the default counts what there is.
    other = f"src-{uuid.uuid4().hex[:6]}"
    store_run(store, other)
    store.insert(f"{store.database}.requests", legs(other, 2, 7, 0, "/vegeta"), REQUEST_COLUMNS)
    result = rows_of(ask("error-rate-by-phase", {"experiment": other}, store.database,
                         lambda sql: run_readonly(store, sql)))
    assert [(r["requests"], r["sources"]) for r in result] == [(7, "vegeta")]
