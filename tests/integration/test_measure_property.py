"""One measurement definition: for random legs, pairs and spans and random rules, at every second the
abort judge's value (rollup cells of the rows, evaluated over the rule's window inside the run of a
random start and end) equals what the SQL of the rule's dashboard panel and of its Grafana alert rule
computes over the same rows stored in the real ClickHouse engine (chDB), with the plugin's macros
expanded as the plugin expands them; outside the run the alert rule has no value.
Quantiles agree within the judge's sketch's relative error (``hub.abort.sketch.ALPHA``). Legs come
from random sources (gateway, Vegeta import, emitter): both count the gateway's legs when there are any.

Then one regression test per way the dashboards measured something else than the judge: a
control-group rule, the shadow mismatch rate (noise, latency regressions, the target), a
``service`` scope, and a steady-state measurement's service filter.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dashboards.alert_rules import alert_rule
from dashboards.config import grafana_config
from dashboards.experiment import experiment_dashboard
from dashboards.macros import expand
from hub.abort import match, measure
from hub.abort.run import RunJudge, RunSpan
from hub.abort.rollup import pair_cells, request_cells, span_cells
from hub.abort.sketch import ALPHA
from hub.experiments import lifecycle as L
from hub.experiments.definition import AbortCondition, Measurement, load_definition
from hub.experiments.events import EVENT_COLUMNS, event_row
from hub.otel.decode import TRACE_COLUMNS
from hub.records.request_leg import REQUEST_COLUMNS
from hub.shadow.records import OUTCOMES, PAIR_COLUMNS

pytestmark = [pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "experiments" / "patient-api-db-failover.yaml"
UTC = dt.timezone.utc
SECONDS = 12
T0 = (int(time.time()) // 60) * 60 - 3600  # a minute boundary an hour ago: panel buckets line up
GATEWAYS, BACKENDS = ("edge-gw", "patient-api"), ("patient-api", "patients-db", "replica-b")
ROUTES = ("/patients/{id}", "/patients", "/health")
SERVICES = ("patient-api", "patients-db")


# ---- random data ----------------------------------------------------------------------------------
@st.composite
def legs(draw):
    n = draw(st.integers(0, 60))
    rows = []
    for _ in range(n):
        second = draw(st.integers(0, SECONDS - 1))
        t = dt.datetime.fromtimestamp(T0 + second + draw(st.integers(0, 999)) / 1000, UTC)
        rows.append((uuid.uuid4(), t, "", "", uuid.uuid4().hex, draw(st.sampled_from(("primary", "shadow", "canary"))),
                     draw(st.sampled_from(GATEWAYS)), draw(st.sampled_from(ROUTES)),
                     draw(st.sampled_from(("GET", "POST"))), draw(st.sampled_from(BACKENDS)),
                     draw(st.sampled_from((0, 200, 200, 200, 404, 500, 503, 504))),
                     float(draw(st.floats(0.5, 3000, allow_nan=False, width=32))), 10, 10, "h",
                     draw(st.sampled_from(("", "", "", "connection reset"))),
                     draw(st.sampled_from(("/hub-gateway/edge-gw", "/hub-gateway/edge-gw", "/vegeta", "/emitters/py")))))
    return rows


@st.composite
def pairs(draw):
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        t = dt.datetime.fromtimestamp(T0 + draw(st.integers(0, SECONDS - 1)) + draw(st.integers(0, 999)) / 1000, UTC)
        outcome = draw(st.sampled_from(OUTCOMES))
        noise = draw(st.booleans()) if outcome in ("body_mismatch", "status_mismatch") else False
        row = {"pair_id": uuid.uuid4(), "event_time": t, "experiment_id": "", "phase": "",
               "gateway": draw(st.sampled_from(GATEWAYS)), "correlation_id": uuid.uuid4().hex,
               "route": draw(st.sampled_from(ROUTES)), "method": "GET", "primary_backend": "patients-db",
               "shadow_backend": draw(st.sampled_from(BACKENDS)), "secondary_backend": "", "primary_status": 200,
               "shadow_status": 200, "secondary_status": 0, "status_match": True, "body_match": False,
               "latency_primary_ms": 1.0, "latency_shadow_ms": 2.0, "latency_diff_ms": 1.0, "outcome": outcome,
               "noise": noise, "differing_fields": [], "noise_fields": [], "shadow_error": "", "source": "/t",
               "source_partition": 0, "source_offset": 0}
        rows.append(row)
    return rows


@st.composite
def spans(draw):
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        ns = (T0 + draw(st.integers(0, SECONDS - 1))) * 1_000_000_000 + draw(st.integers(0, 999_999_999))
        rows.append({"Timestamp": ns, "SpanName": draw(st.sampled_from(ROUTES)),
                     "ServiceName": draw(st.sampled_from(SERVICES)),
                     "Duration": draw(st.integers(1_000, 3_000_000_000)),
                     "StatusCode": draw(st.sampled_from(("Ok", "Error", "Unset")))})
    return rows


def scopes():
    return st.fixed_dictionaries({}, optional={
        "leg": st.sampled_from(("primary", "shadow", "canary")), "route": st.sampled_from(ROUTES),
        "service": st.sampled_from(SERVICES + GATEWAYS), "gateway": st.sampled_from(GATEWAYS),
        "backend": st.sampled_from(BACKENDS), "target": st.sampled_from(BACKENDS + ROUTES + GATEWAYS)})


def record_matches():
    return st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "status": st.lists(st.sampled_from((0, 200, 503, "5xx", "4xx")), min_size=1, max_size=2),
        "method": st.just(["GET"]), "leg": st.sampled_from(("primary", "canary")),
        "route": st.sampled_from(ROUTES), "backend": st.sampled_from(BACKENDS), "failed": st.booleans(),
        "latency_ms_over": st.sampled_from((10.0, 500.0))}))


@st.composite
def rules(draw):
    kind = draw(st.sampled_from([m for m in measure.QUANTILES] + list(measure.RATES) +
                                ["request_rate", "count", "ratio"]))
    rule = {"name": "r", "measurement": kind, "scope": draw(scopes()),
            "window": draw(st.sampled_from(("1s", "3s", "4s"))), "comparison": ">", "threshold": 0.5,
            "min_samples": draw(st.sampled_from((1, 1, 3)))}
    if kind in measure.RATES or kind == "ratio":
        if draw(st.booleans()):
            rule["control"] = draw(scopes())
            rule["confidence"] = draw(st.sampled_from((0.9, 0.99)))
    if kind in ("count", "ratio"):
        where, of = draw(record_matches()), draw(record_matches())
        if where is not None:
            rule["where"] = where
        if of is not None and kind == "ratio":
            rule["of"] = of
    return msgspec.convert(rule, AbortCondition)


# ---- the two forms ---------------------------------------------------------------------------------
GRACE = 2  # abort_grace of the runs below, in seconds


def store_run(store, eid: str, start: int, end: int | None) -> RunSpan:
    """The experiment's run in its log: started at second ``start``, aborted at ``end`` (or running)."""
    defn = msgspec.structs.replace(load_definition(EXAMPLE), id=eid, prerequisites=[], abort_grace=f"{GRACE}s")
    events = [L.create(defn, "ana", dt.datetime.fromtimestamp(T0 - 60, UTC))]
    state = L.apply(None, events[0])
    for new in [L.start(state, "ana", dt.datetime.fromtimestamp(T0 + start + 0.3, UTC), force=True)] + (
            [] if end is None else ["abort"]):
        if new == "abort":
            new = L.abort(state, "rule fired", "abort-judge/r", dt.datetime.fromtimestamp(T0 + end + 0.6, UTC))
        for e in new if isinstance(new, list) else [new]:
            state = L.apply(state, e)
            events.append(e)
    store.insert(f"{store.database}.experiment_events", [event_row(e) for e in events], EVENT_COLUMNS)
    return RunSpan(eid, state.status, T0 + start, None if end is None else T0 + end + GRACE)


def store_rows(store, eid: str, requests: list, pair_list: list, span_list: list) -> tuple[list, list, list]:
    """Rows as stored, and the same rows as the sink hands them to the rollups."""
    requests = [r[:2] + (eid,) + r[3:] for r in requests]
    store.insert(f"{store.database}.requests", requests, REQUEST_COLUMNS)
    pair_rows = [tuple({**p, "experiment_id": eid}[c] for c in PAIR_COLUMNS) for p in pair_list]
    store.insert(f"{store.database}.shadow_pairs", pair_rows, PAIR_COLUMNS)
    span_cols = ("Timestamp", "TraceId", "SpanId", "SpanName", "ServiceName", "Duration", "StatusCode", "ExperimentId")
    store.insert(f"{store.database}.otel_traces",
                 [(dt.datetime.fromtimestamp(s["Timestamp"] / 1e9, UTC), "t", "s", s["SpanName"], s["ServiceName"],
                   s["Duration"], s["StatusCode"], eid) for s in span_list], span_cols)
    trace_rows = []
    for s in span_list:
        row = dict.fromkeys(TRACE_COLUMNS, "")
        row.update(s, TraceId="t", ExperimentId=eid)
        trace_rows.append(tuple(row[c] for c in TRACE_COLUMNS))
    return requests, pair_rows, trace_rows


def judge_values(eid: str, condition, requests, pair_rows, trace_rows, span: RunSpan
                 ) -> dict[int, tuple[float | None, int, bool]]:
    """The judge's value and samples of the rule at every second (cells as the sink makes them), and
    whether the second is inside the run (where the judge's rules act)."""
    counters = match.counters([condition])
    judge = RunJudge(eid, [condition], run=lambda: span)
    for cells in (request_cells(requests, lambda e: counters), pair_cells(pair_rows), span_cells(trace_rows)):
        judge.add(cells.get(eid, []))
    out = {}
    for at in range(T0 - 1, T0 + SECONDS + 5):
        judge.evaluate(at)
        state = judge.states[condition.name]
        out[at] = (state.value, state.samples, span.segment(at) == "inside")
    return out


def close(kind: str, judge: float | None, sql: float | None) -> bool:
    if judge is None or sql is None:
        return judge is None and sql is None
    if kind in measure.QUANTILES:
        return abs(judge - sql) <= ALPHA * abs(sql) * 1.0001 + 1e-9
    return math.isclose(judge, sql, rel_tol=1e-9, abs_tol=1e-12)


def definition_with(rules_: list, steady=None):
    defn = load_definition(EXAMPLE)
    return msgspec.structs.replace(defn, abort_conditions=rules_, steady_state=steady or defn.steady_state,
                                   abort_grace=f"{GRACE}s")


def panel_sql(dashboard: dict, prefix: str) -> str:
    for panel in dashboard["panels"]:
        if panel.get("title", "").startswith(prefix):
            return panel["targets"][0]["rawSql"]
    raise AssertionError(f"no panel {prefix!r}")


def alert_value(store, defn, condition, cfg, eid: str, at: int) -> float | None:
    sql = alert_rule(defn, condition, cfg, eid)["data"][0]["model"]["rawSql"]
    now = dt.datetime.fromtimestamp(at + 0.4, UTC)  # Grafana evaluates within the second
    window = max(1, math.ceil(measure._window_seconds_of(condition)))
    expanded = expand(sql, time_from=now - dt.timedelta(seconds=window), time_to=now, interval_s=1)
    rows = store.query(expanded).result_rows
    assert len(rows) == 1 and len(rows[0]) == 1, f"an alert query returns one value: {rows}"
    return rows[0][0]


def panel_values(store, dashboard: dict, title: str, window: int) -> dict[int, float | None]:
    """The panel's points by the second the judge evaluates them at (the window's last second)."""
    sql = panel_sql(dashboard, title)
    expanded = expand(sql, time_from=dt.datetime.fromtimestamp(T0 - 60, UTC),
                      time_to=dt.datetime.fromtimestamp(T0 + 120, UTC), interval_s=1)
    return {int(r[0].replace(tzinfo=UTC).timestamp()) + window - 1: r[1] for r in store.query(expanded).result_rows}


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(requests=legs(), pair_list=pairs(), span_list=spans(), condition=rules(),
       start=st.integers(-2, 6), length=st.one_of(st.none(), st.integers(0, 8)))
def test_judge_panel_and_alert_rule_compute_the_same_value(store, hub_settings, requests, pair_list, span_list,
                                                          condition, start, length):
    eid = f"p-{uuid.uuid4().hex[:8]}"
    span = store_run(store, eid, start, None if length is None else start + length)
    requests, pair_rows, trace_rows = store_rows(store, eid, requests, pair_list, span_list)
    cfg = grafana_config(hub_settings, env={})
    defn = definition_with([condition])
    expected = judge_values(eid, condition, requests, pair_rows, trace_rows, span)
    kind = condition.measurement

    # The Grafana alert rule, evaluated at every second: the judge's value inside the run (NULL
    # below min_samples), nothing outside it.
    for at, (value, samples, inside) in expected.items():
        want = value if samples >= condition.min_samples and inside else None
        got = alert_value(store, defn, condition, cfg, eid, at)
        assert close(kind, want, got), f"alert rule at {at - T0}: judge {want} ({samples}), SQL {got}"

    # The dashboard panel: one point per window, each the judge's value at the window's last second
    # (the panel draws the whole time range, the run and around it: compared inside the run, from
    # the window's first second on).
    dashboard = experiment_dashboard(defn, cfg, experiment_id=eid, shadow_pairs=True)
    window = max(1, math.ceil(measure._window_seconds_of(condition)))
    # read from the per-second aggregate whenever it holds what the rule counts
    assert ("_per_second" in panel_sql(dashboard, "Rule r:")) == measure.served(condition), condition
    points = panel_values(store, dashboard, "Rule r:", window)
    for at, (value, samples, inside) in expected.items():
        if (at + 1) % window or not inside or at - window + 1 < span.start:
            continue  # not the end of a panel bucket, or a window the judge cuts at the start
        if at in points:
            assert close(kind, value, points[at]), f"panel at {at - T0}: judge {value} ({samples}), SQL {points[at]}"
        else:
            assert samples == 0, f"panel has no point at {at - T0}, the judge has {samples} samples"


# ---- regressions: what the dashboards used to measure instead ------------------------------------
def leg_row(second: int, *, leg="primary", gateway="edge-gw", backend="patients-db", route="/patients/{id}",
            status=200, latency=10.0):
    return (uuid.uuid4(), dt.datetime.fromtimestamp(T0 + second + 0.5, UTC), "", "", uuid.uuid4().hex, leg, gateway,
            route, "GET", backend, status, latency, 10, 10, "h", "", "/hub-gateway/edge-gw")


def rule(**fields) -> AbortCondition:
    return msgspec.convert({"name": "r", "window": "10s", "comparison": ">", "threshold": 0.02, **fields},
                           AbortCondition)


def both_forms(store, hub_settings, condition, requests=(), pair_list=(), at=T0 + 9):
    eid = f"r-{uuid.uuid4().hex[:8]}"
    span = store_run(store, eid, -1, None)
    requests, pair_rows, trace_rows = store_rows(store, eid, list(requests), list(pair_list), [])
    judge = judge_values(eid, condition, requests, pair_rows, trace_rows, span)[at][0]
    cfg = grafana_config(hub_settings, env={})
    defn = definition_with([condition])
    alert = alert_value(store, defn, condition, cfg, eid, at)
    panel = panel_values(store, experiment_dashboard(defn, cfg, experiment_id=eid, shadow_pairs=True), "Rule r:", 10)
    return judge, alert, panel.get(at)


def test_a_control_group_rule_is_the_significant_difference_not_the_canary_error_rate(store, hub_settings):
    # Canary and primary both fail 5% of the time: a noisy metric, no difference. The canary's own
    # error rate (0.05) is above the threshold; the rule's value is 0.
    requests = [leg_row(i % 10, leg=leg, status=503 if i % 20 == 0 else 200)
                for leg in ("primary", "canary") for i in range(200)]
    condition = rule(measurement="error_rate", scope={"leg": "canary"}, control={"leg": "primary"})
    assert both_forms(store, hub_settings, condition, requests) == (0.0, 0.0, 0.0)


def pair(second: int, outcome: str, *, noise=False, backend="replica-b", route="/patients/{id}") -> dict:
    return {"pair_id": uuid.uuid4(), "event_time": dt.datetime.fromtimestamp(T0 + second + 0.5, UTC),
            "experiment_id": "", "phase": "", "gateway": "edge-gw", "correlation_id": uuid.uuid4().hex, "route": route,
            "method": "GET", "primary_backend": "patients-db", "shadow_backend": backend, "secondary_backend": "",
            "primary_status": 200, "shadow_status": 200, "secondary_status": 0, "status_match": True,
            "body_match": False, "latency_primary_ms": 1.0, "latency_shadow_ms": 2.0, "latency_diff_ms": 1.0,
            "outcome": outcome, "noise": noise, "differing_fields": [], "noise_fields": [], "shadow_error": "",
            "source": "/t", "source_partition": 0, "source_offset": 0}


def test_the_shadow_mismatch_rate_excludes_noise_and_latency_and_keeps_to_its_target(store, hub_settings):
    # Of the target's 10 pairs: 1 real body mismatch, 1 status mismatch, 2 noise-only body
    # differences, 3 latency regressions. Another shadow backend differs on every pair.
    pair_list = ([pair(1, "body_mismatch"), pair(2, "status_mismatch"), pair(3, "body_mismatch", noise=True),
                  pair(4, "body_mismatch", noise=True)] + [pair(5, "latency_regression") for _ in range(3)]
                 + [pair(6, "match") for _ in range(3)] + [pair(7, "body_mismatch", backend="other") for _ in range(10)])
    condition = rule(measurement="shadow_mismatch_rate", scope={"target": "replica-b"})
    assert both_forms(store, hub_settings, condition, pair_list=pair_list) == (0.2, 0.2, 0.2)


def test_a_service_scope_matches_the_gateway_or_the_backend(store, hub_settings):
    # patient-api is the backend behind edge-gw: its failing legs count; another backend's do not.
    requests = ([leg_row(i % 10, backend="patient-api", status=500 if i < 5 else 200) for i in range(10)]
                + [leg_row(i % 10, gateway="patient-api", backend="patients-db") for i in range(10)]
                + [leg_row(i % 10, backend="patients-db", status=500) for i in range(30)])
    condition = rule(measurement="error_rate", scope={"leg": "primary", "service": "patient-api"})
    assert both_forms(store, hub_settings, condition, requests) == (0.25, 0.25, 0.25)


def test_the_steady_state_panel_keeps_the_service_filter(store, hub_settings):
    eid = f"s-{uuid.uuid4().hex[:8]}"
    requests = ([leg_row(i % 30, backend="patient-api", status=500 if i < 3 else 200) for i in range(30)]
                + [leg_row(i % 30, backend="patients-db", status=500) for i in range(30)])
    store_rows(store, eid, requests, [], [])
    m = msgspec.convert({"name": "api-errors", "sli": "error_rate", "source": "requests",
                         "filter": {"leg": "primary", "service": "patient-api"}, "tolerance": {"max": 0.02}},
                        Measurement)
    cfg = grafana_config(hub_settings, env={})
    dashboard = experiment_dashboard(definition_with([], [m]), cfg, experiment_id=eid)
    points = panel_values(store, dashboard, "Steady state api-errors", 30)
    assert list(points.values()) == [0.1]
