"""Every query of the generated dashboards runs on the embedded ClickHouse engine over the data of
an experiment run, with the plugin's macros expanded as the plugin expands them, and returns the
columns its panel needs: a time column and numbers for time series, time and text for annotations,
one text column for template variables.

The run: the example failover experiment through its lifecycle (created, checked, started,
phases, a fault injected and removed, an observation and a surprise, aborted by its rule), request
legs on three legs and three routes with errors during injection, spans of two services, alerts of
the judge and an action; a second experiment still running for the gameday-room overview.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path

import msgspec
import pytest

from dashboards.config import grafana_config
from dashboards.experiment import experiment_dashboard, shadow_pairs_available
from dashboards.macros import ALL, Variable, expand
from dashboards.overview import overview_dashboard
from hub.abort.records import ALERT_COLUMNS, alert_row
from hub.experiments import lifecycle as L
from hub.experiments.definition import load_definition
from hub.experiments.events import EVENT_COLUMNS, event_row

pytestmark = [pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "experiments" / "patient-api-db-failover.yaml"
UTC = dt.timezone.utc
T0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=30)
EXP = "patient-api-db-failover"
RUNNING = "checkout-latency-gameday"
ROUTES = ["/patients/{id}", "/patients/{id}/allergies", "/patients"]

REQUEST_COLUMNS = ("event_id", "event_time", "experiment_id", "phase", "correlation_id", "leg", "gateway", "route",
                   "method", "backend", "status", "latency_ms", "request_bytes", "response_bytes", "response_hash",
                   "error", "source")
TRACE_COLUMNS = ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName", "Duration",
                 "StatusCode", "StatusMessage", "ExperimentId", "ExperimentPhase")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def timeline(defn, experiment_id: str, *, end: bool = True) -> list:
    """The events of a run, made by the lifecycle's command helpers (each checked against the state)."""
    defn = msgspec.structs.replace(defn, id=experiment_id)
    events = [L.create(defn, "ana@gameday-room", at(0))]
    state = L.apply(None, events[0])

    def add(new):
        nonlocal state
        for e in new if isinstance(new, list) else [new]:
            state = L.apply(state, e)
            events.append(e)

    add(L.check_prerequisites(state, [{"item": p.item, "done": True} for p in defn.prerequisites], "ana@gameday-room", at(0.5)))
    add(L.start(state, "ana@gameday-room", at(1), force=not defn.prerequisites))
    if not end:
        return events
    add(L.change_phase(state, "injection", "ana@gameday-room", at(5)))
    add(L.inject_fault(state, "stop-instance", "patients-db-primary (zone a)", "jonas@gameday-room", at(6),
                       parameters={"zone": "a"}, injector="aws-fis", fault_id="fault-az-a"))
    add(L.add_note(state, "Promotion started, pools reconnecting", "lucas@gameday-room", at(7), tags=["patients-db"]))
    add(L.add_note(state, "Writes returned 500, not 503", "lucas@gameday-room", at(8), note_kind="surprise",
                   expected="503 during promotion", actual="500 for 40 s", tags=["patient-api"]))
    add(L.remove_fault(state, "fault-az-a", "jonas@gameday-room", at(9)))
    add(L.change_phase(state, "observation", "ana@gameday-room", at(10)))
    add(L.abort(state, "rule api-failing: error_rate 0.31 > 0.1", "abort-judge/api-failing", at(15)))
    return events


def request_rows(experiment_id: str, start: float, end: float, rng: random.Random) -> list[tuple]:
    rows = []
    t = at(start)
    while t < at(end):
        failing = at(6) <= t < at(9) and experiment_id == EXP
        phase = "baseline" if t < at(5) else "injection" if t < at(10) else "observation"
        for i in range(12):  # legs through the edge gateway to the patient-api service (a backend) and others
            leg = "primary" if i < 9 else "shadow" if i < 11 else "canary"
            route = ROUTES[i % 3] if leg != "shadow" else ROUTES[i % 2]
            status = 500 if failing and rng.random() < 0.35 and leg != "shadow" else 200
            rows.append((uuid.uuid4(), t + dt.timedelta(milliseconds=rng.randrange(1000)), experiment_id, phase,
                         uuid.uuid4().hex, leg, "edge-gw", route, "GET",
                         "patients-db-replica-b" if leg == "shadow" else "patient-api" if i % 2 else "patients-db", status,
                         float(rng.lognormvariate(3.5 if not failing else 5.5, 0.4)), 200, 1500, "h", "", "/test"))
        t += dt.timedelta(seconds=2)
    return rows


def span_rows(experiment_id: str, start: float, end: float, rng: random.Random) -> list[tuple]:
    rows = []
    t = at(start)
    while t < at(end):
        failing = at(6) <= t < at(9)
        for service, name in (("patient-api", "GET /patients/{id}"), ("patients-db", "SELECT patients")):
            error = failing and rng.random() < 0.3
            rows.append((t, uuid.uuid4().hex, uuid.uuid4().hex[:16], "", name, "Server", service,
                         int(rng.lognormvariate(16, 0.5)), "Error" if error else "Ok", "", experiment_id, ""))
        t += dt.timedelta(seconds=3)
    return rows


def alert_records(experiment_id: str) -> list[tuple]:
    base = {"kind": "alert", "experiment_id": experiment_id, "rule": "api-failing", "severity": "abort",
            "measurement": "error_rate", "comparison": ">", "threshold": 0.1, "samples": 412,
            "top_contributors": [{"route": "/patients/{id}", "value": 0.4}], "example_request_ids": ["r1"]}
    return [alert_row({**base, "alert_id": "a1", "status": "firing", "observed": 0.31, "time": at(7.5).isoformat(),
                       "window_start": at(7).isoformat(), "window_end": at(7.5).isoformat(),
                       "message": f"{experiment_id}: rule 'api-failing' (abort) firing"}),
            alert_row({**base, "alert_id": "a1", "status": "resolved", "observed": 0.01, "time": at(9.5).isoformat(),
                       "window_start": at(9).isoformat(), "window_end": at(9.5).isoformat(),
                       "message": f"{experiment_id}: rule 'api-failing' (abort) resolved"}),
            alert_row({"kind": "action", "experiment_id": experiment_id, "alert_id": "a1", "rule": "api-failing",
                       "action": "halt_webhook", "url": "http://127.0.0.1:9/halt", "ok": True, "status_code": 200,
                       "attempts": 1, "time": at(7.6).isoformat()})]


@pytest.fixture
def run(store):
    """The store with the two experiments' data; returns (store, definition of the aborted one)."""
    rng = random.Random(7)
    defn = load_definition(EXAMPLE)
    events = timeline(defn, EXP) + timeline(defn, RUNNING, end=False)
    store.insert(f"{store.database}.experiment_events", [event_row(e) for e in events], EVENT_COLUMNS)
    store.insert(f"{store.database}.requests", request_rows(EXP, 1, 15, rng) + request_rows(RUNNING, 1, 29, rng), REQUEST_COLUMNS)
    store.insert(f"{store.database}.otel_traces", span_rows(EXP, 1, 15, rng), TRACE_COLUMNS)
    store.insert(f"{store.database}.alerts", alert_records(EXP) + alert_records(RUNNING), ALERT_COLUMNS)
    return store, defn


def add_shadow_pairs(store) -> None:
    # The migrations create shadow_pairs; fill the columns the shadow panels read.
    rows, t, rng = [], at(1), random.Random(3)
    while t < at(15):
        for route in ROUTES[:2]:
            outcome = rng.choice(["match"] * 9 + ["body_mismatch"]) if t < at(6) else rng.choice(["match", "status_mismatch"])
            rows.append((t, EXP, route, uuid.uuid4().hex, outcome, "edge-gw", "patients-db-replica-b"))
        t += dt.timedelta(seconds=2)
    store.insert(f"{store.database}.shadow_pairs", rows, ("event_time", "experiment_id", "route", "correlation_id", "outcome",
                                                          "gateway", "shadow_backend"))


# ---- walking a dashboard's queries ----------------------------------------------------------------
def queries_of(dashboard: dict) -> list[tuple[str, str, str]]:
    """(kind, title, rawSql): kind is a panel type, 'annotation' or 'variable'."""
    out = []
    for panel in dashboard["panels"]:
        for p in [panel] + panel.get("panels", []):
            for target in p.get("targets", []):
                out.append((p["type"], p.get("title", ""), target["rawSql"]))
    for a in dashboard["annotations"]["list"]:
        if a["datasource"]["type"] == "grafana-clickhouse-datasource":
            out.append(("annotation", a["name"], a["target"]["rawSql"]))
    for v in dashboard["templating"].get("list", []):
        if v["type"] == "query":
            out.append(("variable", v["name"], v["query"]))
    return out


def _is_time(t: str) -> bool:
    return t.replace("Nullable(", "").startswith(("DateTime", "Date"))


def _is_number(t: str) -> bool:
    t = t.replace("Nullable(", "")
    return t.startswith(("Float", "UInt", "Int", "Decimal"))


def _is_text(t: str) -> bool:
    return t.replace("LowCardinality(", "").replace("Nullable(", "").startswith("String")


def run_query(store, kind: str, title: str, sql: str, variables: dict, *, require_rows: bool):
    expanded = expand(sql, time_from=at(-1), time_to=at(30), interval_s=10, variables=variables)
    assert "$" not in expanded.replace("$__all", ""), f"{title}: unexpanded macro in {expanded}"
    result = store.query(expanded)
    names = list(result.column_names)
    types = [t.name for t in result.column_types]
    rows = result.result_rows
    where = f"{kind} {title!r}: {expanded}\ncolumns {list(zip(names, types))}"
    if require_rows:
        assert rows, f"no rows: {where}"
    if kind == "timeseries":
        assert names[0] == "time" and _is_time(types[0]), where
        assert any(_is_number(t) for t in types[1:]), where
        times = [r[0] for r in rows]
        assert times == sorted(times), f"time series must be sorted by time: {where}"
    elif kind == "annotation":
        assert "time" in names and _is_time(types[names.index("time")]), where
        assert "text" in names and _is_text(types[names.index("text")]), where
        if "timeEnd" in names:
            assert _is_time(types[names.index("timeEnd")]), where
            assert all(r[names.index("timeEnd")] >= r[names.index("time")] for r in rows), where
    elif kind == "variable":
        assert len(names) == 1 and _is_text(types[0]), where
    elif kind in ("table", "stat"):
        assert names, where
    else:
        raise AssertionError(f"a query on an unexpected panel type: {where}")
    return names, rows


def all_selected(options: dict[str, list[str]] | None = None) -> dict[str, Variable]:
    options = options or {}
    return {name: Variable(ALL, options.get(name, [])) for name in ("route", "leg", "service")}


def one_selected() -> dict[str, Variable]:
    return {"route": Variable(["/patients/{id}"]), "leg": Variable(["primary", "canary"]),
            "service": Variable("patient-api")}


# ---- the tests ---------------------------------------------------------------------------------
def test_every_query_of_an_experiment_dashboard_runs_on_the_engine_and_has_the_columns_its_panel_needs(run, hub_settings):
    store, defn = run
    cfg = grafana_config(hub_settings, env={})
    assert cfg.database == store.database != "hub"
    # Without shadow pairs to show (shadow_pairs=False) the shadow panels are notes.
    dashboard = experiment_dashboard(defn, cfg, shadow_pairs=False)
    queries = queries_of(dashboard)
    kinds = {k for k, _, _ in queries}
    assert {"timeseries", "table", "annotation", "variable"} <= kinds
    assert all(f"{store.database}." in sql for _, _, sql in queries)

    # Variable options first, as Grafana does: "All" then means every option.
    options = {}
    for kind, name, sql in queries:
        if kind == "variable":
            _, rows = run_query(store, kind, name, sql, {}, require_rows=True)
            options[name] = [r[0] for r in rows]
    assert set(options["leg"]) == {"primary", "shadow", "canary"}
    assert set(ROUTES) <= set(options["route"]) and set(options["service"]) >= {"patient-api", "patients-db"}

    results = {}
    for kind, title, sql in queries:
        if kind != "variable":
            results[title] = run_query(store, kind, title, sql, all_selected(options), require_rows=True)
            run_query(store, kind, title, sql, one_selected(), require_rows=False)

    # The data says what happened: the numbers are the run's, not just well-typed.
    names, rows = results["Phases"]
    assert [r[names.index("text")] for r in rows] == ["Phase: baseline", "Phase: injection", "Phase: observation"]
    names, rows = results["Faults"]
    assert "stop-instance on patients-db-primary (zone a)" in rows[0][names.index("text")]
    names, rows = results["Aborts"]
    assert rows[0][names.index("text")].startswith("Aborted by abort-judge/api-failing")
    names, rows = results["Notes and surprises"]
    assert [r[names.index("kind")] for r in rows] == ["surprise", "observation"]
    names, rows = results["Error rate per leg"]
    during = [r[2] for r in rows if r[1] == "primary" and at(6.5) <= r[0].replace(tzinfo=UTC) < at(8.5)]
    before = [r[2] for r in rows if r[1] == "primary" and r[0].replace(tzinfo=UTC) < at(5)]
    assert max(during) > 0.2 and max(before) == 0
    names, rows = results["State"]
    assert rows[0][names.index("status")] == "aborted"

    # Without shadow_pairs the shadow panels are notes.
    texts = [p for p in dashboard["panels"] if p["type"] == "text"]
    assert any("pairing agent" in p["options"]["content"] for p in texts)


def test_with_a_shadow_pairs_table_the_shadow_panels_query_it(run, hub_settings):
    store, defn = run
    add_shadow_pairs(store)
    assert shadow_pairs_available(store, store.database)
    dashboard = experiment_dashboard(defn, grafana_config(hub_settings, env={}), shadow_pairs=True)
    titles = {p.get("title") for p in dashboard["panels"]}
    assert {"Shadow outcomes over time", "Top differing routes"} <= titles
    assert not any("pairing agent" in (p.get("options") or {}).get("content", "") for p in dashboard["panels"])
    shadow = [q for q in queries_of(dashboard) if "shadow_pairs" in q[2]]
    assert len(shadow) == 4  # outcomes, top routes, the rule and the steady-state measurement
    for kind, title, sql in shadow:
        names, rows = run_query(store, kind, title, sql, all_selected({"route": ROUTES}), require_rows=True)
        if title == "Top differing routes":
            assert rows[0][names.index("differing")] > 0


def test_every_query_of_the_overview_runs_and_keeps_experiments_that_just_ended(run, hub_settings):
    """The room shows the running experiment and the one aborted minutes ago, with its alerts and
    its abort reason; once HUB_ROOM_RECENT_HOURS have passed since it ended, only the running one."""
    store, _ = run
    dashboard = overview_dashboard(grafana_config(hub_settings, env={}))
    results = {}
    for kind, title, sql in queries_of(dashboard):
        results[title] = run_query(store, kind, title, sql, {}, require_rows=True)
    names, rows = results["Experiments in the room"]
    assert [r[names.index("experiment_id")] for r in rows] == [RUNNING, EXP]
    assert rows[0][names.index("phase")] == "baseline"
    assert rows[1][names.index("status")] == "aborted" and rows[1][names.index("abort_reason")]
    names, rows = results["Abort rules"]
    state = {(r[names.index("experiment_id")], r[names.index("rule")]): r[names.index("state")] for r in rows}
    assert state[(RUNNING, "api-failing")] == "resolved" and state[(EXP, "api-failing")] == "resolved"
    assert state[(RUNNING, "api-very-slow")] == "ok"
    names, rows = results["Latest alerts"]
    assert {r[names.index("experiment_id")] for r in rows} == {RUNNING, EXP}

    # Ended longer ago than the setting: out of the room.
    short = grafana_config(hub_settings.with_overrides(room_recent_hours=0.1), env={})
    for kind, title, sql in queries_of(overview_dashboard(short)):
        if title in ("Experiments in the room", "Latest alerts"):
            names, rows = run_query(store, kind, title, sql, {}, require_rows=True)
            assert {r[names.index("experiment_id")] for r in rows} == {RUNNING}


def test_dashboards_of_an_experiment_read_from_its_stored_definition(run, hub_settings):
    """The definition as the log stores it (ExperimentCreated) gives the same dashboard as the file."""
    store, defn = run
    from hub.experiments.definition import definition_from_dict

    payload = store.query(f"SELECT payload FROM {store.database}.experiment_events "
                          f"WHERE experiment_id = '{EXP}' AND kind = 'experiment_created'").result_rows[0][0]
    stored = definition_from_dict(json.loads(payload)["definition"])
    cfg = grafana_config(hub_settings, env={})
    assert experiment_dashboard(stored, cfg) == experiment_dashboard(defn, cfg)
