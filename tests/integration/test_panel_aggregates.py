"""The per-second aggregates (migration 0017, filled by its materialized views on insert) answer
every panel they serve with the same rows as the panel's definition over the raw tables
(``hub.sql.aggregates``): counts and rates exactly, the sketch quantiles exactly (and within the
sketch's 1 % of the raw latency at the same rank, equal to the abort judge's sketch).

The data: random legs of three experiments (random phases, routes, legs, gateways, backends,
statuses, error texts, sources of three kinds, lognormal latencies plus zeros and sub-microsecond
ones, times at random milliseconds and at whole seconds), written in several inserts (several
parts, one insert repeated with its deduplication token as the sink retries), random shadow pairs
and spans. Each panel runs with random time ranges (edges on seconds that hold rows, a row at the
range's last instant), intervals, variable selections and source selections.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import random
import uuid
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from dashboards.macros import ALL, Variable, expand
from hub.abort.sketch import ALPHA, QuantileSketch
from hub.experiments import lifecycle as L
from hub.experiments.definition import load_definition
from hub.experiments.events import EVENT_COLUMNS, event_row
from hub.sql import aggregates as A

pytestmark = [pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "experiments" / "patient-api-db-failover.yaml"
UTC = dt.timezone.utc
T0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=20)
EXPERIMENTS = ("exp-a", "exp-b", "exp-c")
ROUTES = ["/patients/{id}", "/patients", "/search", "/health", "/appointments/{id}"]
LEGS = ["primary", "shadow", "canary"]
SOURCES = ["/hub-gateway/edge-gw", "/vegeta", "/emit/orders"]
REQUEST_COLUMNS = ("event_id", "event_time", "experiment_id", "phase", "correlation_id", "leg", "gateway", "route",
                   "method", "backend", "status", "latency_ms", "request_bytes", "response_bytes", "response_hash",
                   "error", "source")
PAIR_COLUMNS = ("pair_id", "event_time", "experiment_id", "phase", "gateway", "correlation_id", "route",
                "shadow_backend", "outcome", "noise", "source")
TRACE_COLUMNS = ("Timestamp", "TraceId", "SpanId", "ServiceName", "Duration", "StatusCode", "ExperimentId",
                 "ExperimentPhase")


def timeline(experiment_id: str) -> list:
    defn = msgspec.structs.replace(load_definition(EXAMPLE), id=experiment_id)
    events = [L.create(defn, "ana@gameday-room", T0 - dt.timedelta(minutes=2))]
    state = L.apply(None, events[0])
    for new in (L.check_prerequisites(state, [{"item": p.item, "done": True} for p in defn.prerequisites],
                                      "ana@gameday-room", T0 - dt.timedelta(minutes=1)),):
        for e in new if isinstance(new, list) else [new]:
            state = L.apply(state, e)
            events.append(e)
    start = L.start(state, "ana@gameday-room", T0, force=not defn.prerequisites)
    return events + (start if isinstance(start, list) else [start])


def random_time(rng: random.Random) -> dt.datetime:
    seconds = rng.randrange(0, 600)
    millis = 0 if rng.random() < 0.2 else rng.randrange(1000)  # some rows at whole seconds
    return T0 + dt.timedelta(seconds=seconds, milliseconds=millis)


def random_latency(rng: random.Random) -> float:
    u = rng.random()
    if u < 0.02:
        return 0.0
    if u < 0.04:
        return 0.0005
    return rng.lognormvariate(rng.choice([1.0, 3.0, 4.5]), 0.8)


def request_rows(rng: random.Random, n: int) -> list[tuple]:
    rows = []
    for _ in range(n):
        status = rng.choice([200, 200, 200, 201, 302, 404, 429, 500, 503, 0])
        error = rng.choice(["", "", "", "upstream reset"]) if status != 0 else "timeout"
        rows.append((uuid.uuid4(), random_time(rng), rng.choice(EXPERIMENTS),
                     rng.choice(["baseline", "injection", "recovery"]), uuid.uuid4().hex, rng.choice(LEGS),
                     rng.choice(["edge-gw", "patient-api"]), rng.choice(ROUTES), "GET",
                     rng.choice(["patients-db", "patients-db-replica-b", "search"]), status, random_latency(rng),
                     100, 1000, "h", error, rng.choice(SOURCES)))
    return rows


def pair_rows(rng: random.Random, n: int) -> list[tuple]:
    return [(uuid.uuid4(), random_time(rng), rng.choice(EXPERIMENTS), rng.choice(["baseline", "injection"]),
             rng.choice(["edge-gw", "patient-api"]), uuid.uuid4().hex, rng.choice(ROUTES),
             rng.choice(["patients-db-replica-b", "search-b"]),
             rng.choice(["match", "match", "status_mismatch", "body_mismatch", "shadow_error", "latency_regression"]),
             rng.random() < 0.3, "/hub/pairing") for _ in range(n)]


def span_rows(rng: random.Random, n: int) -> list[tuple]:
    rows = []
    for _ in range(n):
        t = random_time(rng) + dt.timedelta(microseconds=rng.randrange(1000))
        rows.append((t, uuid.uuid4().hex, uuid.uuid4().hex[:16], rng.choice(["patient-api", "patients-db", "search"]),
                     int(rng.lognormvariate(15, 1.2)) if rng.random() > 0.03 else 0, rng.choice(["Ok", "Ok", "Error", "Unset"]),
                     rng.choice(EXPERIMENTS), rng.choice(["baseline", "injection"])))
    return rows


@pytest.fixture(scope="module")
def filled(module_store):
    """The store every test of the module reads (none writes to it; a test that writes takes its own)."""
    store = module_store
    rng = random.Random(20)
    db = store.database
    store.insert(f"{db}.experiment_events", [event_row(e) for x in EXPERIMENTS for e in timeline(x)], EVENT_COLUMNS)
    legs = []
    for batch in range(4):  # several inserts: several parts of raw rows and of aggregates
        rows = request_rows(rng, 1500)
        store.insert(f"{db}.requests", rows, REQUEST_COLUMNS, token=f"requests:{batch}")
        legs += rows
    store.insert(f"{db}.requests", legs[:1500], REQUEST_COLUMNS, token="requests:0")  # a retried insert: dropped
    for batch in range(2):
        store.insert(f"{db}.shadow_pairs", pair_rows(rng, 1500), PAIR_COLUMNS, token=f"pairs:{batch}")
        store.insert(f"{db}.otel_traces", span_rows(rng, 1500), TRACE_COLUMNS, token=f"spans:{batch}")
    # Legs at the last instant of a range the test uses, and one right after it
    edge = T0 + dt.timedelta(seconds=300)
    extra = [(uuid.uuid4(), edge, "exp-a", "injection", "c", "primary", "edge-gw", "/search", "GET", "search", 200,
              12.5, 1, 1, "h", "", SOURCES[0]),
             (uuid.uuid4(), edge + dt.timedelta(milliseconds=400), "exp-a", "injection", "c", "primary", "edge-gw",
              "/search", "GET", "search", 503, 40.0, 1, 1, "h", "", SOURCES[0])]
    store.insert(f"{db}.requests", extra, REQUEST_COLUMNS)
    return store, legs + extra


def run(store, sql: str, time_from, time_to, interval_s, variables) -> list[tuple]:
    return store.query(expand(sql, time_from=time_from, time_to=time_to, interval_s=interval_s,
                              variables=variables)).result_rows


def test_the_views_count_every_stored_row_once(filled):
    store, legs = filled
    db = store.database
    assert int(store.scalar(f"SELECT count() FROM {db}.requests")) == len(legs)
    assert int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_second")) == len(legs)
    assert int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_5_seconds")) == len(legs)
    assert int(store.scalar(f"SELECT sum(pair_count) FROM {db}.shadow_pairs_per_second")) == 3000
    assert int(store.scalar(f"SELECT sum(span_count) FROM {db}.spans_per_second")) == 3000
    # fewer rows than the raw table: one per second and key
    assert int(store.scalar(f"SELECT count() FROM {db}.requests_per_second FINAL")) < len(legs)
    assert (int(store.scalar(f"SELECT count() FROM {db}.requests_per_5_seconds FINAL"))
            < int(store.scalar(f"SELECT count() FROM {db}.requests_per_second FINAL")))


KEYS = "experiment_id, phase, route, leg, gateway, backend, status_class, source"


def test_the_5_second_grain_holds_the_per_second_rows_summed_by_5_second_cell(filled):
    store, _ = filled
    db = store.database
    per_second = store.query(
        f"SELECT toStartOfInterval(second, INTERVAL 5 SECOND) AS cell, {KEYS}, sum(legs), sum(failed_legs), "
        f"sumMap(latency_buckets) FROM {db}.requests_per_second GROUP BY cell, {KEYS} ORDER BY cell, {KEYS}").result_rows
    cells = store.query(
        f"SELECT second AS cell, {KEYS}, sum(legs), sum(failed_legs), sumMap(latency_buckets) "
        f"FROM {db}.requests_per_5_seconds GROUP BY cell, {KEYS} ORDER BY cell, {KEYS}").result_rows
    assert cells == per_second and len(cells) > 100
    assert all(int(c[0].replace(tzinfo=UTC).timestamp()) % 5 == 0 for c in cells)


def test_the_5_second_grain_is_filled_from_the_per_second_inserts_with_the_raw_deduplication(store):
    """The 5-second view re-aggregates what is inserted into requests_per_second (per second, not
    per leg): a row written into the per-second table reaches its cell. Along that chain a raw
    insert the raw table drops as a repeat (the same token, or the same rows without one, also
    across two days' partitions) is dropped in both grains, and distinct inserts whose per-second
    rows are identical (other event ids, no token or other tokens) are each counted."""
    db = store.database
    rng = random.Random(5)

    def stored():
        return (int(store.scalar(f"SELECT count() FROM {db}.requests")),
                int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_second")),
                int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_5_seconds")))

    def renamed(rows):  # other legs, the same per-second rows
        return [(uuid.uuid4(),) + r[1:] for r in rows]

    first = request_rows(rng, 500)
    store.insert(f"{db}.requests", first, REQUEST_COLUMNS, token="chain:1")
    store.insert(f"{db}.requests", first, REQUEST_COLUMNS, token="chain:1")  # retried: dropped
    assert stored() == (500, 500, 500)
    again = request_rows(rng, 300)
    store.insert(f"{db}.requests", again, REQUEST_COLUMNS)
    store.insert(f"{db}.requests", again, REQUEST_COLUMNS)  # the same rows without a token: dropped
    assert stored() == (800, 800, 800)
    store.insert(f"{db}.requests", renamed(again), REQUEST_COLUMNS)
    store.insert(f"{db}.requests", renamed(again), REQUEST_COLUMNS, token="chain:2")
    store.insert(f"{db}.requests", renamed(again), REQUEST_COLUMNS, token="chain:3")
    assert stored() == (1700, 1700, 1700)
    midnight = T0.replace(hour=0, minute=0, second=0)
    two_days = [(uuid.uuid4(), midnight + dt.timedelta(seconds=rng.randrange(-30, 30), milliseconds=rng.randrange(1000)))
                + r[2:] for r in again]
    for _ in range(2):
        store.insert(f"{db}.requests", two_days, REQUEST_COLUMNS, token="chain:4")
    assert stored() == (2000, 2000, 2000)
    store.insert(f"{db}.requests", first[:10], REQUEST_COLUMNS, token="chain:1")  # a used token: dropped
    assert stored() == (2000, 2000, 2000)
    # a row put in the per-second table reaches its 5-second cell
    cell = int(T0.timestamp()) // 5 * 5 + 900
    store.command(f"INSERT INTO {db}.requests_per_second VALUES (toDateTime({cell + 3}, 'UTC'), 'exp-z', "
                  f"'injection', '/search', 'primary', 'edge-gw', 'search', 5, '{SOURCES[0]}', 7, 7, "
                  f"([toInt32(10)], [toUInt64(7)]))")
    assert store.query(f"SELECT toUnixTimestamp(second), legs, failed_legs, latency_buckets "
                       f"FROM {db}.requests_per_5_seconds WHERE experiment_id = 'exp-z'").result_rows == [
        (cell, 7, 7, ([10], [7]))]
    per_second = store.query(
        f"SELECT toStartOfInterval(second, INTERVAL 5 SECOND) AS cell, {KEYS}, sum(legs), sum(failed_legs), "
        f"sumMap(latency_buckets) FROM {db}.requests_per_second GROUP BY cell, {KEYS} ORDER BY cell, {KEYS}").result_rows
    cells = store.query(
        f"SELECT second AS cell, {KEYS}, sum(legs), sum(failed_legs), sumMap(latency_buckets) "
        f"FROM {db}.requests_per_5_seconds GROUP BY cell, {KEYS} ORDER BY cell, {KEYS}").result_rows
    assert cells == per_second


def test_the_quantile_panels_read_the_5_second_cells_inside_the_range_when_the_interval_fits(store):
    """A row put in the 5-second grain alone (not a sum of per-second rows) shows which rows a panel
    read: the cells wholly inside the range when the panel's interval is a multiple of 5 s (or it
    has no time buckets), never a cell cut by the range's edge or with another interval; the
    per-second rows for the rest."""
    db = store.database
    base = int(T0.timestamp()) // 5 * 5 + 600  # a cell's first second
    legs = [(uuid.uuid4(), dt.datetime.fromtimestamp(base + s + 0.25, UTC), "exp-g", "injection", "c", "primary",
             "edge-gw", "/search", "GET", "search", 200, 10.0, 1, 1, "h", "", SOURCES[0]) for s in range(0, 20)]
    store.insert(f"{db}.requests", legs, REQUEST_COLUMNS)
    # the marker: 1000 legs of 5000 ms in the cell [base + 10, base + 15), in the grain alone
    store.command(f"INSERT INTO {db}.requests_per_5_seconds VALUES (toDateTime({base + 10}, 'UTC'), 'exp-g', "
                  f"'injection', '/search', 'primary', 'edge-gw', 'search', 2, '{SOURCES[0]}', 1000, 0, "
                  f"([toInt32(ceil(log(5000) / 0.020000666706669435))], [toUInt64(1000)]))")
    variables = {"route": Variable(ALL, ROUTES), "leg": Variable(ALL, LEGS)}

    def legs_counted(sql, first, last, interval):
        rows = run(store, sql, dt.datetime.fromtimestamp(base + first, UTC), dt.datetime.fromtimestamp(base + last, UTC),
                   interval, variables)
        return rows

    def route_requests(first, last):
        rows = legs_counted(A.route_summary(db, "exp-g", "all"), first, last, 5)
        return rows[0][2], rows[0][5]  # requests, p99

    assert route_requests(0, 19) == (1020, pytest.approx(5000, rel=ALPHA))  # cells 0-19 whole: the marker's too
    assert route_requests(11, 19)[0] == 9  # the marker's cell is cut by the range: its seconds instead
    assert route_requests(10, 14)[0] == 1005  # exactly the marker's cell
    assert route_requests(10, 13)[0] == 4
    for interval, fits in ((5, True), (10, True), (60, True), (1, False), (7, False), (3, False)):
        rows = legs_counted(A.latency_quantiles(db, "exp-g", "leg", "all"), 0, 19, interval)
        p99 = max(r[4] for r in rows)
        assert (p99 > 1000) == fits, (interval, rows)
    # without the marker the grain's answer is the per-second rows' (and the raw rows')
    store.command(f"DELETE FROM {db}.requests_per_5_seconds WHERE experiment_id = 'exp-g' AND legs = 1000")
    for interval in (1, 5, 7, 60):
        for first, last in ((0, 19), (3, 17), (11, 12), (10, 14)):
            got = legs_counted(A.latency_quantiles(db, "exp-g", "leg", "all"), first, last, interval)
            assert got == legs_counted(A.latency_quantiles(db, "exp-g", "leg", "all", grains=False), first, last,
                                       interval)
            assert got == legs_counted(A.latency_quantiles(db, "exp-g", "leg", "all", form="raw"), first, last,
                                       interval)


@pytest.mark.slow
def test_every_aggregate_backed_panel_equals_its_raw_form(filled):
    store, _ = filled
    db = store.database
    rng = random.Random(7)
    options = {"route": ROUTES, "leg": LEGS, "service": ["patient-api", "patients-db", "search"]}
    selections = [
        {name: Variable(ALL, opts) for name, opts in options.items()},
        {"route": Variable(["/search"]), "leg": Variable(["primary"]), "service": Variable("patients-db")},
        {"route": Variable(["/patients/{id}", "/patients"]), "leg": Variable(["primary", "canary"]),
         "service": Variable(ALL, options["service"])},
    ]
    ranges = [(T0 - dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=11)),
              (T0 + dt.timedelta(seconds=37), T0 + dt.timedelta(seconds=300))]  # ends on the edge rows' second
    ranges += [(T0 + dt.timedelta(seconds=a), T0 + dt.timedelta(seconds=a + rng.randrange(1, 400)))
               for a in (rng.randrange(0, 500) for _ in range(2))]
    compared = defaultdict(int)
    for experiment_id, sources in zip(EXPERIMENTS, ("auto", "all", "vegeta,emit")):
        for p in A.panels(db, experiment_id, sources, planned_routes=["/planned"]):
            for variables in selections:
                for time_from, time_to in ranges:
                    interval = rng.choice([1, 5, 7, 60])
                    raw = run(store, p.raw, time_from, time_to, interval, variables)
                    agg = run(store, p.aggregate, time_from, time_to, interval, variables)
                    assert agg == raw, (p.name, experiment_id, sources, time_from, time_to, interval)
                    compared[p.name] += len(raw)
    assert all(n > 0 for n in compared.values()), compared  # every panel compared rows, not only empty results


def emitted_queries(db_settings, experiment_id: str, sources: str) -> list[tuple[str, str, str]]:
    """(kind, title, rawSql) of every query the generated experiment (with its shadow panels) and
    room dashboards emit."""
    from dashboards.config import grafana_config
    from dashboards.experiment import experiment_dashboard
    from dashboards.overview import overview_dashboard
    from tests.integration.test_dashboards_queries import queries_of

    cfg = grafana_config(db_settings, env={})
    defn = load_definition(EXAMPLE)
    return (queries_of(experiment_dashboard(defn, cfg, experiment_id=experiment_id, shadow_pairs=True, sources=sources))
            + queries_of(overview_dashboard(cfg)))


RAW_TABLES = ("requests", "shadow_pairs", "otel_traces")


@pytest.mark.slow
def test_the_dashboards_emit_the_aggregate_form_of_every_panel_an_aggregate_serves(filled, module_hub_settings):
    """The statements in the generated dashboards, not the module's functions: apart from the rule
    and steady-state panels (the judge's measurement per window, ``hub.abort.measure``), none reads
    a raw table of an aggregate; each one that reads an aggregate is a panel of
    ``hub.sql.aggregates`` and returns the same rows as that panel's raw form over random ranges,
    intervals and selections."""

    store, _ = filled
    db = store.database
    rng = random.Random(11)
    options = {"route": ROUTES, "leg": LEGS, "service": ["patient-api", "patients-db", "search"]}
    selections = [{name: Variable(ALL, opts) for name, opts in options.items()},
                  {"route": Variable(["/search", "/patients"]), "leg": Variable(["primary"]),
                   "service": Variable("patients-db")}]
    defn = load_definition(EXAMPLE)
    served_names, compared = set(), defaultdict(int)
    for experiment_id, sources in zip(EXPERIMENTS, ("auto", "all", "vegeta,emit")):
        served = A.panels(db, experiment_id, sources, module_hub_settings.room_recent_hours, list(defn.targets.routes),
                          list(defn.targets.services))
        for kind, title, sql in emitted_queries(module_hub_settings, experiment_id, sources):
            raw_tables = [t for t in RAW_TABLES if re.search(rf"\b{re.escape(db)}\.{t}\b(?!_)", sql)]
            panel = A.aggregate_of(sql, served)
            if title.startswith(("Rule ", "Steady state ")):
                continue  # the judge's measurement per window: test_measure_property.py compares it with the judge
            assert not raw_tables, (title, raw_tables, sql)
            if "_per_second" not in sql:
                continue  # annotations and tables of the experiment's own records
            assert panel is not None, (title, sql)
            assert panel.aggregate == sql, title
            served_names.add(panel.name)
            for variables in selections:
                a = rng.randrange(-60, 500)
                time_from, time_to = T0 + dt.timedelta(seconds=a), T0 + dt.timedelta(seconds=a + rng.randrange(1, 500))
                interval = rng.choice([1, 5, 60])
                agg = run(store, sql, time_from, time_to, interval, variables)
                raw = run(store, panel.raw, time_from, time_to, interval, variables)
                assert agg == raw, (title, experiment_id, sources, time_from, time_to, interval)
                compared[panel.name] += len(raw)
    # every panel an aggregate serves is on a dashboard, and compared rows
    assert served_names == {p.name for p in served}, {p.name for p in served} - served_names
    assert all(n > 0 for n in compared.values()), compared


def test_the_last_second_of_the_range_counts_whole(filled):
    store, _ = filled
    db = store.database
    variables = {"route": Variable(["/search"]), "leg": Variable(["primary"])}
    time_from, time_to = T0 + dt.timedelta(seconds=300), T0 + dt.timedelta(seconds=300)
    sql = A.request_rate(db, "exp-a", "leg", "all", form="aggregate")
    raw_count = int(store.scalar(f"SELECT count() FROM {db}.requests WHERE experiment_id = 'exp-a' AND route = '/search' "
                                 f"AND leg = 'primary' AND toDateTime(event_time) = toDateTime('{time_from:%Y-%m-%d %H:%M:%S}', 'UTC')"))
    assert raw_count >= 2  # the row at the second's first instant and the one 400 ms later
    rows = run(store, sql, time_from, time_to, 1, variables)
    assert [(r[1], r[2]) for r in rows] == [("primary", float(raw_count))]
    assert run(store, A.request_rate(db, "exp-a", "leg", "all", form="raw"), time_from, time_to, 1, variables) == rows


def test_the_quantiles_are_the_judges_sketch_within_its_error_of_the_raw_latency(filled):
    store, legs = filled
    db = store.database
    time_from, time_to = T0 - dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=11)
    variables = {"route": Variable(ALL, ROUTES), "leg": Variable(ALL, LEGS)}
    rows = run(store, A.route_summary(db, "exp-b", "all"), time_from, time_to, 5, variables)
    assert rows
    by_group = defaultdict(list)
    for leg in legs:
        if leg[2] == "exp-b":
            by_group[(leg[7], leg[5])].append(float(leg[11]))
    for route, leg, requests, error_rate, p50, p99 in rows:
        latencies = by_group[(route, leg)]
        assert requests == len(latencies)
        sketch = QuantileSketch()
        # the stored value is a Float32
        stored = [float(store_float) for store_float in _as_float32(latencies)]
        sketch.add_all(stored)
        for q, got in ((0.5, p50), (0.99, p99)):
            assert got == pytest.approx(sketch.quantile(q), rel=1e-9)
            exact = sorted(stored)[math.floor(q * (len(stored) - 1))]
            assert got == pytest.approx(exact, rel=ALPHA * 1.0001, abs=1e-3)


def _as_float32(values):
    import struct

    return [struct.unpack("f", struct.pack("f", v))[0] for v in values]


def test_the_migration_copies_rows_stored_before_it_once_and_runs_again_harmlessly(store, hub_settings):
    from hub.storage.migrations import discover, render

    db = store.database
    migrations = [m for m in discover() if m.number in (17, 18)]
    for view in ("requests_per_second", "shadow_pairs_per_second", "spans_per_second", "requests_per_5_seconds"):
        store.command(f"DROP VIEW {db}.{view}_mv")
        store.command(f"DROP TABLE {db}.{view}")
    rng = random.Random(3)
    legs = request_rows(rng, 800)
    store.insert(f"{db}.requests", legs, REQUEST_COLUMNS)  # a store that held rows before the migration
    store.insert(f"{db}.shadow_pairs", pair_rows(rng, 300), PAIR_COLUMNS)
    for _ in range(2):  # applied twice (two workers starting together): the rows are copied once
        for migration in migrations:
            for statement in render(migration.sql, hub_settings):
                store.command(statement)
    store.insert(f"{db}.requests", request_rows(rng, 200), REQUEST_COLUMNS)  # after it: through the view
    assert int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_second")) == 1000
    assert int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_5_seconds")) == 1000
    assert int(store.scalar(f"SELECT sum(pair_count) FROM {db}.shadow_pairs_per_second")) == 300
    assert int(store.scalar(f"SELECT sum(span_count) FROM {db}.spans_per_second")) == 0


def absence_rule(scope: dict, window: str = "5s"):
    from hub.experiments.definition import AbortCondition

    return msgspec.convert({"name": "silent", "measurement": "absence", "scope": scope, "window": window,
                            "comparison": ">", "threshold": 3}, AbortCondition)


ABSENCE_SCOPES = [{}, {"route": "/search"}, {"leg": "canary", "route": "/health"}, {"gateway": "patient-api"},
                  {"service": "search"}, {"target": "/appointments/{id}"}, {"backend": "patients-db", "leg": "shadow"}]


def test_the_absence_panel_reads_the_last_second_from_the_aggregate_and_equals_its_raw_form(filled):
    """Seconds since the last leg in scope, per bucket: from max(second) of requests_per_second,
    equal to the same definition over the raw rows (whole seconds of the range)."""
    from dashboards import queries as Q

    store, _ = filled
    db = store.database
    rng = random.Random(5)
    compared = 0
    for experiment_id, sources in zip(EXPERIMENTS, ("auto", "all", "vegeta,emit")):
        for scope in ABSENCE_SCOPES:
            rule = absence_rule(scope, rng.choice(["1s", "5s", "30s"]))
            agg = Q.rule_measurement(db, experiment_id, rule, sources=sources)
            raw = Q.rule_measurement(db, experiment_id, rule, sources=sources, form="raw")
            assert f"{db}.requests_per_second" in agg and not re.search(rf"{db}\.requests\b(?!_)", agg), agg
            for time_from, time_to in [(T0 - dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=11)),
                                       (T0 + dt.timedelta(seconds=37), T0 + dt.timedelta(seconds=300))]:
                interval = rng.choice([1, 5, 7, 60])
                got = run(store, agg, time_from, time_to, interval, {})
                assert got == run(store, raw, time_from, time_to, interval, {}), (experiment_id, scope, interval)
                compared += sum(r[1] is not None for r in got)
    assert compared > 100


def test_alert_rules_read_the_aggregate_where_it_holds_the_measurement(filled, module_hub_settings):
    """The Grafana alert rule's query reads the per-second aggregate for the measurements it holds
    (absence included) and the raw rows for custom ones; its absence value is the raw form's at every
    second, within the run and outside it."""
    from dashboards.alert_rules import alert_rule
    from dashboards.config import grafana_config
    from hub.abort import measure
    from hub.experiments.definition import AbortCondition

    store, _ = filled
    db = store.database
    cfg = grafana_config(module_hub_settings, env={})
    defn = load_definition(EXAMPLE)
    for c in defn.abort_conditions + [absence_rule({"route": "/search"}),
                                      msgspec.convert({"name": "c", "measurement": "count", "window": "5s",
                                                       "where": {"status": ["5xx"]}, "comparison": ">",
                                                       "threshold": 1}, AbortCondition)]:
        sql = alert_rule(defn, c, cfg, "exp-a")["data"][0]["model"]["rawSql"]
        reads_raw = bool(re.search(rf"{db}\.(requests|shadow_pairs|otel_traces)\b(?!_)", sql))
        assert reads_raw == (c.measurement == "count"), (c.name, sql)
    start = int(T0.timestamp())
    for scope in ABSENCE_SCOPES:
        rule = absence_rule(scope)
        for grace in (None, 2.0):
            forms = [measure.window_sql(db, "exp-b", rule, end="{end}", grace=grace, form=form)
                     for form in ("aggregate", "raw")]
            for end in (start - 2, start, start + 1, start + 4, start + 9, start + 37, start + 300, start + 301,
                        start + 599, start + 604):
                agg, raw = (store.query(f.replace("{end}", str(end))).result_rows for f in forms)
                assert agg == raw, (scope, grace, end - start)
