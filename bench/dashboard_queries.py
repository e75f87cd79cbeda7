"""Dashboard query latency over one experiment of many request records: the raw tables, the
per-second aggregates, and a plain table.

    python -m bench.dashboard_queries --rows N --data-dir DIR [--repeats R] [--no-plain]

A ``--data-dir`` that already holds the experiment (made by an earlier run with the same ``--rows``)
is reused: its rows are not generated again (the store is migrated first, so a new aggregate gets
the stored rows copied in), and the time range is that run's hour.

Run by ``bench.run`` in a process of its own (chDB opens one data directory per process);
prints one JSON object on stdout, progress on stderr.

The store: an embedded chDB store made by the hub's migrations (``hub.storage.migrations``,
settings from ``HUB_HOME=DIR`` alone, whatever the environment says). In it, one experiment
(``examples/experiments/patient-api-db-failover.yaml``) that has been running for the last hour:

- its timeline in ``experiment_events`` (created, prerequisites checked, started, phases
  baseline 0-15 min, injection 15-30, observation 30-50, recovery from 50 on, a fault from minute
  16 to 24, an observation and a surprise), still running;
- ``--rows`` request legs in ``hub.requests``, written by one ``INSERT ... SELECT ... FROM
  numbers(N)``: event times spread evenly over the hour (plus up to 250 ms of jitter), ~86%
  primary, ~9% shadow (replaying the request of the leg before it when that one is a plain
  primary on a read-only patient route: same correlation id, route, method and gateway), 5%
  canary legs, gateways ``edge-gw`` (60%) and ``patient-api`` (40%), nine methods and routes of a
  patient records API (seven route templates) with weights and lognormal latencies per route,
  backends per route (shadows on ``patients-db-replica-b``),
  statuses with 2% client errors, about 1% server errors and 0.2% timeouts (status 0), rising
  to 12% and 2% on the patient routes while the fault is active (with latencies three times
  higher), the phase of each instant; every value a hash of the row number, so the data is the
  same for the same N and time;
- derived from those: one row in ``shadow_pairs`` per shadow leg (2% body mismatches, shadow
  errors), N/10 spans of two services in ``otel_traces``, and two alerts and one action of
  the abort judge in ``alerts``.

The queries: every query of the dashboards the hub generates for that experiment
(``dashboards.experiment.experiment_dashboard``, with shadow panels since the migrations create
``shadow_pairs``) and of the gameday-room overview (``dashboards.overview``), where it shows as
running: panels, ClickHouse annotations and template variables. Each query's raw SQL is expanded
the way Grafana and the ClickHouse plugin expand it (``dashboards.macros.expand``) for the
experiment's time range (the hour), ``$__interval_s`` = 5 (Grafana's rounded interval for an
hour over about a thousand pixels) and two selections of the template variables:

- ``all``: route, leg and service on All (options from the variable queries, as Grafana does);
- ``one route``: route ``/patients/{id}``, leg ``primary``, service ``patient-api``.

hub: the queries on ``hub.requests`` as the migration makes it (partitioned by day, ordered by
``experiment_id, route, leg, event_time``); a panel the dashboards draw from an aggregate runs
here in its raw form (the same definition over the raw rows). baseline: the same queries with ``hub.requests``
replaced by ``hub.requests_plain``: the same columns (``CREATE TABLE ... AS hub.requests``)
in a ``MergeTree ORDER BY tuple()`` (no partitions, no sort key, no skipping indexes or
projections), filled by the same ``INSERT ... SELECT`` (the same rows: a checksum over every
column but ``ingest_time`` must match). The other tables are shared: queries that do not read
``requests`` run the same on both sides.

aggregates: the dashboards as generated, every panel that a per-second aggregate serves
(``hub.sql.aggregates``: request rate, error rate and latency quantiles per leg and per route, the
route table, the room's error and request rates, shadow outcomes and top differing routes, span
error rate and latency; the route, leg and service variables) reading its aggregate form, filled by the
materialized views of migration 0017 while ``hub.requests`` (and the pairs and spans) were written;
the rule and steady-state panels from the aggregates where they hold the measurement (on the hub
side from the raw rows, ``form="raw"``); the other queries as on the hub side. Before timing, each aggregate form's rows are compared with
its raw form's (the same definition over the raw rows: whole seconds, exact counts, the abort
judge's sketch quantiles) for both selections; any difference stops the run.

per_second: the dashboards as generated before the 5-second grain (migration 0018) and the absence
aggregate: the latency quantile panels and the routes table from ``requests_per_second`` alone
(``Panel.per_second``, also compared with the raw form), the absence rule panel from the raw rows,
every other query as on the aggregates side. ``--no-plain`` leaves
the plain table out (its second copy of the rows doubles the generation at 100,000,000 rows).

Measurement: after both tables are written, background merges are awaited (up to 300 s), one
untimed pass runs every query once on both sides (and checks that both return the same number of
rows), then ``--repeats`` timed passes. A pass runs every query of both selections once on the
hub's table and once on the plain table, alternating query by query (which side goes first
alternates by pass, so that load from elsewhere on the machine hits both alike), one at a time
through clickhouse-connect with the result rows fetched. A *refresh* is the sum, within one
pass, over every panel and annotation query of both dashboards (what the gameday room repeats
every 5 s, here one query after another; variables only run on load and when the time range
changes, so they are timed per query but not counted in the refresh). Reported: per query and
per refresh, the median and the 95th percentile (linear interpolation) over the passes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import time
from pathlib import Path

from bench.common import BenchContext, Result, peak_rss_mib, run_json_child
from hub.stats import percentile

UTC = dt.timezone.utc
DEFAULT_ROWS = 10_000_000
DEFAULT_REPEATS = 5
INTERVAL_S = 5
SPAN_S = 3600
EXPERIMENT = "patient-api-db-failover"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "experiments" / f"{EXPERIMENT}.yaml"
SELECTIONS = ("all", "one route")

# (method, route, weight, median ms, sigma, backend); weights sum to 100.
ROUTES = (
    ("GET", "/patients/{id}", 35, 18.0, 0.45, "patients-db"),
    ("GET", "/patients/{id}/allergies", 15, 25.0, 0.5, "patients-db"),
    ("GET", "/patients", 12, 45.0, 0.55, "patients-db"),
    ("POST", "/patients", 4, 60.0, 0.5, "patients-db"),
    ("GET", "/patients/{id}/medications", 10, 30.0, 0.5, "patients-db"),
    ("PUT", "/patients/{id}", 5, 70.0, 0.6, "patients-db"),
    ("GET", "/appointments/{id}", 10, 22.0, 0.5, "appointments-db"),
    ("GET", "/search", 6, 120.0, 0.7, "search"),
    ("GET", "/health", 3, 1.5, 0.3, "gateway"),
)
SHADOWED = (1, 2, 3, 5)  # 1-based indexes of the read-only patient routes that are shadowed

REQUEST_INSERT_COLUMNS = ("event_id", "event_time", "experiment_id", "phase", "correlation_id", "leg", "gateway",
                          "route", "method", "backend", "status", "latency_ms", "request_bytes", "response_bytes",
                          "response_hash", "error", "source")


def log(line: str) -> None:
    print(f"[dashboards] {line}", file=sys.stderr, flush=True)


def _array(values) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else repr(v) for v in values) + "]"


def requests_select(rows: int, t0: dt.datetime) -> str:
    """The SELECT that makes ``rows`` request legs of the experiment (deterministic in rows and t0)."""
    pool = [i + 1 for i, r in enumerate(ROUTES) for _ in range(r[2])]
    t0_ms = int(t0.timestamp() * 1000)
    routes, methods = _array([r[1] for r in ROUTES]), _array([r[0] for r in ROUTES])
    medians, sigmas, backends = (_array([r[3] for r in ROUTES]), _array([r[4] for r in ROUTES]),
                                 _array([r[5] for r in ROUTES]))
    return f"""
SELECT
    reinterpretAsUUID(MD5(concat('event-', toString(n)))) AS event_id,
    fromUnixTimestamp64Milli(toInt64({t0_ms} + intDiv(n * {SPAN_S * 1000}, {rows}) + h6 % 250), 'UTC') AS event_time,
    '{EXPERIMENT}' AS experiment_id,
    multiIf(minute < 15, 'baseline', minute < 30, 'injection', minute < 50, 'observation', 'recovery') AS phase,
    lower(hex(MD5(concat('request-', toString(request_n))))) AS correlation_id,
    leg, gateway, route, method, backend,
    toUInt16(status_code) AS status,
    toFloat32(latency) AS latency_ms,
    toUInt32(200 + h3 % 1800) AS request_bytes,
    toUInt32(if(status_code IN (200, 201), 400 + h4 % 20000, 60 + h4 % 200)) AS response_bytes,
    if(status_code = 0, '', lower(hex(cityHash64(request_n, if(leg = 'shadow' AND h2 % 50 = 0, 1, 0)))))
        AS response_hash,
    error_text AS error,
    concat('/gateways/', gateway) AS source
FROM (
    SELECT
        number AS n,
        cityHash64(n, 1) AS h1, cityHash64(n, 2) AS h2, cityHash64(n, 3) AS h3,
        cityHash64(n, 4) AS h4, cityHash64(n, 5) AS h5, cityHash64(n, 6) AS h6,
        intDiv(n * 60, {rows}) AS minute,
        minute >= 16 AND minute < 24 AS fault,
        -- A shadow leg replays the request of the row before it (same correlation id, route,
        -- method and gateway) when that row is a primary leg on a read-only patient route.
        arrayElement({_array(pool)}, 1 + cityHash64(toUInt64(n - 1), 2) % {len(pool)}) AS prev_ri,
        multiIf(h1 % 100 < 5, 'canary',
                h1 % 100 < 20 AND n > 0 AND cityHash64(toUInt64(n - 1), 1) % 100 >= 20 AND has({_array(SHADOWED)}, prev_ri),
                'shadow', 'primary') AS leg,
        if(leg = 'shadow', toUInt64(n - 1), n) AS request_n,
        if(leg = 'shadow', prev_ri, arrayElement({_array(pool)}, 1 + h2 % {len(pool)})) AS ri,
        arrayElement({routes}, ri) AS route,
        arrayElement({methods}, ri) AS method,
        multiIf(leg = 'shadow', 'patients-db-replica-b',
                leg = 'canary', concat(arrayElement({backends}, ri), '-canary'),
                arrayElement({backends}, ri)) AS backend,
        if(cityHash64(request_n, 3) % 100 < 60, 'edge-gw', 'patient-api') AS gateway,
        fault AND startsWith(route, '/patients') AS hit,
        (h4 % 100000) / 100000.0 AS u,
        if(hit, 0.02, 0.002) AS p_timeout,
        if(hit, 0.12, 0.01) AS p_5xx,
        multiIf(u < p_timeout, 0,
                u < p_timeout + p_5xx, arrayElement([500, 502, 503, 504], 1 + h5 % 4),
                u < p_timeout + p_5xx + 0.02, arrayElement([400, 401, 404, 409, 429], 1 + h5 % 5),
                method = 'POST', 201, 200) AS status_code,
        multiIf(status_code = 0, 'upstream timeout', status_code = 500, 'internal server error',
                status_code = 502, 'bad gateway: upstream connection reset',
                status_code = 503, 'service unavailable: no healthy upstream',
                status_code = 504, 'gateway timeout: upstream did not answer in time',
                status_code = 429, 'rate limited', '') AS error_text,
        sqrt(-2 * log(((h5 % 1000000) + 1) / 1000001.0)) * cos(2 * pi() * (h6 % 1000000) / 1000000.0) AS z,
        if(status_code = 0, 5000.0,
           exp(log(arrayElement({medians}, ri)) + arrayElement({sigmas}, ri) * z)
           * if(hit, 3.0, 1.0) * if(leg = 'canary', 1.15, 1.0)) AS latency
    FROM numbers({rows})
)"""


def pairs_select(db: str) -> str:
    """One shadow pair per shadow leg of the experiment (what the pairing agent would store)."""
    return f"""
SELECT event_id AS pair_id, event_time, experiment_id, phase, gateway, correlation_id, route, method,
       'patients-db' AS primary_backend, backend AS shadow_backend, toUInt16(200) AS primary_status,
       status AS shadow_status, status = 200 AS status_match, cityHash64(correlation_id) % 50 != 0 AS body_match,
       multiIf(status = 0 OR error != '', 'shadow_error', status != 200, 'status_mismatch',
               NOT body_match, 'body_mismatch', 'match') AS outcome,
       latency_ms AS latency_shadow_ms, error AS shadow_error, '/hub/pairing' AS source
FROM {db}.requests WHERE experiment_id = '{EXPERIMENT}' AND leg = 'shadow'"""


def spans_select(rows: int, t0: dt.datetime) -> str:
    t0_ns = int(t0.timestamp()) * 1_000_000_000
    return f"""
SELECT fromUnixTimestamp64Nano(toInt64({t0_ns} + intDiv(number * {SPAN_S * 1_000_000_000}, {rows}))) AS Timestamp,
       lower(hex(MD5(concat('trace-', toString(intDiv(number, 2)))))) AS TraceId,
       lower(hex(cityHash64(number, 7))) AS SpanId,
       if(number % 2 = 1, lower(hex(cityHash64(number - 1, 7))), '') AS ParentSpanId,
       if(number % 2 = 0, 'GET /patients/{{id}}', 'SELECT patients') AS SpanName,
       if(number % 2 = 0, 'Server', 'Client') AS SpanKind,
       if(number % 2 = 0, 'patient-api', 'patients-db') AS ServiceName,
       toUInt64(exp(16 + 0.5 * sqrt(-2 * log(((cityHash64(number, 8) % 1000000) + 1) / 1000001.0))
                    * cos(2 * pi() * (cityHash64(number, 9) % 1000000) / 1000000.0))) AS Duration,
       if(cityHash64(number, 10) % 100 < if(intDiv(number * 60, {rows}) BETWEEN 16 AND 23, 20, 2), 'Error', 'Ok')
           AS StatusCode,
       '{EXPERIMENT}' AS ExperimentId,
       multiIf(intDiv(number * 60, {rows}) < 15, 'baseline', intDiv(number * 60, {rows}) < 30, 'injection',
               intDiv(number * 60, {rows}) < 50, 'observation', 'recovery') AS ExperimentPhase
FROM numbers({rows})"""


def timeline_rows(t0: dt.datetime) -> list[tuple]:
    """The experiment's events: created before t0, started at t0, still running an hour later."""
    import msgspec

    from hub.experiments import lifecycle as L
    from hub.experiments.definition import load_definition
    from hub.experiments.events import event_row

    def at(minutes: float) -> dt.datetime:
        return t0 + dt.timedelta(minutes=minutes)

    defn = msgspec.structs.replace(load_definition(EXAMPLE), id=EXPERIMENT)
    events = [L.create(defn, "amara@gameday-room", at(-5))]
    state = L.apply(None, events[0])

    def add(new):
        nonlocal state
        for e in new if isinstance(new, list) else [new]:
            state = L.apply(state, e)
            events.append(e)

    add(L.check_prerequisites(state, [{"item": p.item, "done": True} for p in defn.prerequisites],
                              "priya@gameday-room", at(-2)))
    add(L.start(state, "amara@gameday-room", at(0)))
    add(L.change_phase(state, "injection", "amara@gameday-room", at(15)))
    add(L.inject_fault(state, "stop-instance", "patients-db-primary (zone a)", "jonas@gameday-room", at(16),
                       parameters={"zone": "a"}, injector="aws-fis", fault_id="fault-az-a"))
    add(L.add_note(state, "Promotion started, pools reconnecting", "lucas@gameday-room", at(18), tags=["patients-db"]))
    add(L.add_note(state, "Writes returned 500, not 503", "lucas@gameday-room", at(20), note_kind="surprise",
                   expected="503 during promotion", actual="500 for 40 s", tags=["patient-api"]))
    add(L.remove_fault(state, "fault-az-a", "jonas@gameday-room", at(24)))
    add(L.change_phase(state, "observation", "amara@gameday-room", at(30)))
    add(L.change_phase(state, "recovery", "amara@gameday-room", at(50)))
    return [event_row(e) for e in events]


def alert_rows(t0: dt.datetime) -> list[tuple]:
    from hub.abort.records import alert_row

    def at(minutes: float) -> str:
        return (t0 + dt.timedelta(minutes=minutes)).isoformat()

    base = {"kind": "alert", "experiment_id": EXPERIMENT, "rule": "api-failing", "severity": "abort",
            "measurement": "error_rate", "comparison": ">", "threshold": 0.1, "samples": 4120, "alert_id": "a1",
            "top_contributors": [{"route": "/patients/{id}", "value": 0.14}], "example_request_ids": ["r1"]}
    return [alert_row({**base, "status": "firing", "observed": 0.13, "time": at(17.5), "window_start": at(17),
                       "window_end": at(17.5), "message": f"{EXPERIMENT}: rule 'api-failing' (abort) firing"}),
            alert_row({**base, "status": "resolved", "observed": 0.01, "time": at(24.5), "window_start": at(24),
                       "window_end": at(24.5), "message": f"{EXPERIMENT}: rule 'api-failing' (abort) resolved"}),
            alert_row({"kind": "action", "experiment_id": EXPERIMENT, "alert_id": "a1", "rule": "api-failing",
                       "action": "halt_webhook", "url": "http://127.0.0.1:9/halt", "ok": True, "status_code": 200,
                       "attempts": 1, "time": at(17.6)})]


# ---- the dashboards' queries ----------------------------------------------------------------------
def queries_of(name: str, dashboard: dict) -> list[dict]:
    """Every ClickHouse query of a dashboard: panel targets, annotations and query variables."""
    out = []
    for panel in dashboard["panels"]:
        for p in [panel] + panel.get("panels", []):
            for target in p.get("targets", []):
                out.append({"dashboard": name, "kind": p["type"], "title": p.get("title", ""), "sql": target["rawSql"]})
    for a in dashboard["annotations"]["list"]:
        if a["datasource"]["type"] == "grafana-clickhouse-datasource":
            out.append({"dashboard": name, "kind": "annotation", "title": a["name"], "sql": a["target"]["rawSql"]})
    for v in dashboard["templating"].get("list", []):
        if v["type"] == "query":
            out.append({"dashboard": name, "kind": "variable", "title": v["name"], "sql": v["query"]})
    return out


def plain_sql(sql: str, db: str) -> str:
    """The query against the plain copy of ``requests``."""
    return re.sub(rf"(?<![\w.`]){re.escape(db)}\.requests(?![\w])", f"{db}.requests_plain", sql)


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "p95": round(percentile(values, 0.95), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def wait_for_merges(store, db: str, timeout: float = 300.0) -> float:
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < timeout:
        running = int(store.scalar(f"SELECT count() FROM system.merges WHERE database = '{db}'") or 0)
        quiet = quiet + 1 if running == 0 else 0
        if quiet >= 3:
            break
        time.sleep(1.0)
    return time.monotonic() - started


def parts(store, db: str, table: str) -> int:
    return int(store.scalar(f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = '{table}' AND active"))


CHECKSUM = ("SELECT count(), groupBitXor(cityHash64(event_id, event_time, experiment_id, phase, correlation_id, leg, "
            "gateway, route, method, backend, status, latency_ms, request_bytes, response_bytes, response_hash, "
            "error, source)) FROM {table}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_queries", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="request legs of the experiment")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed passes over every query")
    parser.add_argument("--data-dir", required=True, help="HUB_HOME of the store (created; chDB data under it)")
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain MergeTree copy of the rows")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.repeats < 1:
        parser.error("--rows must be at least 1000 and --repeats at least 1")

    from dashboards import queries as Q
    from dashboards.config import grafana_config
    from dashboards.experiment import experiment_dashboard, shadow_pairs_available
    from dashboards.macros import ALL, Variable, expand
    from dashboards.overview import overview_dashboard
    from hub.abort.records import ALERT_COLUMNS
    from hub.experiments.definition import load_definition
    from hub.experiments.events import EVENT_COLUMNS
    from hub.settings import load_settings
    from hub.sql import aggregates as A
    from hub.storage.client import open_store
    from hub.storage.migrations import migrate

    settings = load_settings({"HUB_HOME": str(Path(args.data_dir).resolve())})  # embedded chDB, nothing else
    store = open_store(settings)
    db = settings.database
    try:
        migrate(store, settings)  # a store made by an earlier run: the new migrations copy its rows in
        stored = int(store.scalar(f"SELECT count() FROM {db}.requests WHERE experiment_id = '{EXPERIMENT}'"))
        reused = stored > 0
        if reused and stored != args.rows:
            raise SystemExit(f"{args.data_dir} holds {stored:,} request legs of the experiment, not {args.rows:,}: "
                             "give an empty --data-dir or the one made with these --rows")
        if reused:  # the data of an earlier run with the same --rows: its hour, not the last one
            t0 = store.scalar(f"SELECT started_at FROM {db}.experiments WHERE experiment_id = '{EXPERIMENT}'")
            t0 = t0.replace(tzinfo=UTC) if t0.tzinfo is None else t0.astimezone(UTC)
            log(f"reusing the {stored:,} request legs (and pairs, spans) stored in {args.data_dir} (hour from {t0})")
        else:
            t0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(seconds=SPAN_S)
            store.insert(f"{db}.experiment_events", timeline_rows(t0), EVENT_COLUMNS)
            store.insert(f"{db}.alerts", alert_rows(t0), ALERT_COLUMNS)
        time_from, time_to = t0, t0 + dt.timedelta(seconds=SPAN_S + 1)

        columns = ", ".join(REQUEST_INSERT_COLUMNS)
        select = requests_select(args.rows, t0)
        hub_generation = None
        if not reused:
            log(f"generating {args.rows:,} request legs in {db}.requests (the hub's table)")
            started = time.perf_counter()
            store.command(f"INSERT INTO {db}.requests ({columns}) {select}")
            hub_generation = time.perf_counter() - started
            log(f"{db}.requests (and its per-second aggregate): {hub_generation:.1f}s")
        with_plain = not args.no_plain
        plain_generation = None
        if with_plain and reused:
            store.command(f"DROP TABLE IF EXISTS {db}.requests_plain")
        if with_plain:
            log(f"the same rows in {db}.requests_plain (MergeTree ORDER BY tuple())")
            store.command(f"CREATE TABLE {db}.requests_plain AS {db}.requests ENGINE = MergeTree ORDER BY tuple()")
            started = time.perf_counter()
            store.command(f"INSERT INTO {db}.requests_plain ({columns}) {select}")
            plain_generation = time.perf_counter() - started
            log(f"{db}.requests_plain: {plain_generation:.1f}s")
            hub_sum = store.query(CHECKSUM.format(table=f"{db}.requests")).result_rows[0]
            plain_sum = store.query(CHECKSUM.format(table=f"{db}.requests_plain")).result_rows[0]
            if hub_sum != plain_sum or int(hub_sum[0]) != args.rows:
                raise SystemExit(f"the two tables differ: {hub_sum} and {plain_sum} (count, checksum), "
                                 f"{args.rows:,} rows expected")
        aggregated = int(store.scalar(f"SELECT sum(legs) FROM {db}.requests_per_second"))
        if aggregated != args.rows:
            raise SystemExit(f"{db}.requests_per_second counts {aggregated:,} legs, {args.rows:,} expected")
        started = time.perf_counter()
        if not reused:
            store.command(f"INSERT INTO {db}.shadow_pairs (pair_id, event_time, experiment_id, phase, gateway, "
                          "correlation_id, route, method, primary_backend, shadow_backend, primary_status, shadow_status, "
                          "status_match, body_match, outcome, latency_shadow_ms, shadow_error, source) "
                          + pairs_select(db))
            spans = max(args.rows // 10, 1)
            store.command(f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, "
                          "SpanKind, ServiceName, Duration, StatusCode, ExperimentId, ExperimentPhase) "
                          + spans_select(spans, t0))
        other_generation = None if reused else time.perf_counter() - started
        merge_wait = wait_for_merges(store, db)
        sizes = {t: {"rows": int(store.scalar(f"SELECT count() FROM {db}.{t}")), "parts": parts(store, db, t),
                     "bytes_on_disk": int(store.scalar(
                         f"SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND table = '{t}' AND active"))}
                 for t in ("requests", "requests_per_second", "requests_per_5_seconds", "shadow_pairs", "shadow_pairs_per_second",
                           "otel_traces", "spans_per_second") + (("requests_plain",) if with_plain else ())}
        log(("" if reused else f"shadow pairs and spans in {other_generation:.1f}s; ")
            + f"merges settled after {merge_wait:.0f}s; "
            + "; ".join(f"{t}: {v['rows']:,} rows in {v['parts']} parts" for t, v in sizes.items()))

        cfg = grafana_config(settings, env={})
        defn = load_definition(EXAMPLE)
        queries = (queries_of("experiment", experiment_dashboard(
                       defn, cfg, experiment_id=EXPERIMENT, shadow_pairs=shadow_pairs_available(store, db)))
                   + queries_of("gameday room", overview_dashboard(cfg)))

        served = A.panels(db, EXPERIMENT, "auto", cfg.room_recent_hours, list(defn.targets.routes),
                          list(defn.targets.services))
        for q in queries:
            q["panel"] = A.aggregate_of(q["sql"], served)
        # rule and steady-state panels: the judge's measurement per window, from the aggregates where
        # they hold it; the raw side runs it over the raw rows (its quantiles the exact element at
        # the judge's rank, the aggregate's the judge's sketch: compared with the judge in the tests)
        raw_measurements = {Q.rule_measurement(db, EXPERIMENT, c): Q.rule_measurement(db, EXPERIMENT, c, form="raw")
                            for c in defn.abort_conditions}
        raw_measurements.update({Q.steady_state_measurement(db, EXPERIMENT, m): Q.steady_state_measurement(
            db, EXPERIMENT, m, form="raw") for m in defn.steady_state})
        # the per-second side: the dashboards as generated before the coarser grain and the absence
        # aggregate: the quantile panels from the per-second rows alone, absence from the raw rows
        before = {Q.rule_measurement(db, EXPERIMENT, c): Q.rule_measurement(db, EXPERIMENT, c, form="raw")
                  for c in defn.abort_conditions if c.measurement == "absence"}
        for q in queries:
            q["raw"] = q["panel"].raw if q["panel"] else raw_measurements.get(q["sql"], q["sql"])
            q["per_second"] = (q["panel"].per_second or q["sql"]) if q["panel"] else before.get(q["sql"], q["sql"])

        def expanded(sql: str, variables: dict) -> str:
            return expand(sql, time_from=time_from, time_to=time_to, interval_s=INTERVAL_S, variables=variables)

        options = {q["title"]: [r[0] for r in store.query(expanded(q["sql"], {})).result_rows]
                   for q in queries if q["kind"] == "variable"}
        selections = {
            "all": {name: Variable(ALL, options.get(name, [])) for name in ("route", "leg", "service")},
            "one route": {"route": Variable(["/patients/{id}"]), "leg": Variable(["primary"]),
                          "service": Variable("patient-api")},
        }
        sides = ("hub", "per_second", "aggregates") + (("baseline",) if with_plain else ())
        plan = []  # (selection, query index, {side: sql}, raw form of the aggregate's definition or None)
        for sel, variables in selections.items():
            for i, q in enumerate(queries):
                p = q["panel"]  # the dashboards emit its aggregate form; the raw side runs its raw form
                sql = expanded(q["raw"], variables)
                sqls = {"hub": sql, "baseline": plain_sql(sql, db), "aggregates": expanded(q["sql"], variables),
                        "per_second": expanded(q["per_second"], variables)}
                plan.append((sel, i, sqls, sql if p else None))
        for q in queries:
            q["reads_requests"] = bool(re.search(rf"{re.escape(db)}\.requests(?![\w])", q["raw"]))

        log(f"{len(queries)} queries ({sum(q['reads_requests'] for q in queries)} read requests, "
            f"{sum(q['panel'] is not None for q in queries)} served by aggregates); "
            f"one untimed pass (each aggregate form against its raw form), then {args.repeats} timed passes")
        returned, equal = {}, {}
        for sel, i, sqls, raw_form in plan:
            hub_rows = len(store.query(sqls["hub"]).result_rows)
            if with_plain:
                base_rows = len(store.query(sqls["baseline"]).result_rows)
                if hub_rows != base_rows:
                    raise SystemExit(f"{queries[i]['title']!r} ({sel}): {hub_rows} rows from {db}.requests, "
                                     f"{base_rows} from {db}.requests_plain")
            returned[(sel, i)] = hub_rows
            if raw_form is not None:
                agg_rows = store.query(sqls["aggregates"]).result_rows
                raw_rows = store.query(raw_form).result_rows
                if agg_rows != raw_rows:
                    raise SystemExit(f"{queries[i]['title']!r} ({sel}): the aggregate form returned {len(agg_rows)} "
                                     f"rows, the raw form {len(raw_rows)}, not the same")
                if sqls["per_second"] != sqls["aggregates"] and store.query(sqls["per_second"]).result_rows != raw_rows:
                    raise SystemExit(f"{queries[i]['title']!r} ({sel}): the per-second form differs from the raw form")
                equal[(sel, i)] = len(agg_rows)
        log(f"{len(equal)} aggregate forms equal to their raw forms "
            f"({sum(equal.values()):,} rows compared)")
        timings = {(sel, i, side): [] for sel, i, _, _ in plan for side in sides}
        for rep in range(args.repeats):
            # The sides alternate query by query (the order rotates by pass), so that a burst of
            # load from elsewhere on the machine hits every side alike.
            order = sides[rep % len(sides):] + sides[:rep % len(sides)]
            for sel, i, sqls, _ in plan:
                for side in order:
                    started = time.perf_counter()
                    store.query(sqls[side]).result_rows
                    timings[(sel, i, side)].append(time.perf_counter() - started)
            log(f"pass {rep + 1}/{args.repeats} done")

        per_query = []
        refresh = {}
        for sel in selections:
            for i, q in enumerate(queries):
                per_query.append({"selection": sel, "dashboard": q["dashboard"], "kind": q["kind"], "title": q["title"],
                                  "reads_requests": q["reads_requests"], "rows_returned": returned[(sel, i)],
                                  "aggregate": q["panel"].name if q["panel"] else None,
                                  "aggregate_rows_equal_to_raw_form": equal.get((sel, i)),
                                  **{f"{side}_seconds": summary(timings[(sel, i, side)]) for side in sides}})
            counted = [i for i, q in enumerate(queries) if q["kind"] != "variable"]
            refresh[sel] = {side: summary([sum(timings[(sel, i, side)][rep] for i in counted)
                                           for rep in range(args.repeats)]) for side in sides}
            refresh[sel]["queries"] = len(counted)
        print(json.dumps({
            "rows": args.rows, "repeats": args.repeats, "interval_s": INTERVAL_S,
            "time_from": time_from.isoformat(), "time_to": time_to.isoformat(),
            "reused_data": reused,
            "generation_seconds": {"hub": rounded(hub_generation), "baseline": rounded(plain_generation),
                                   "shadow_pairs_and_spans": rounded(other_generation)},
            "merge_wait_seconds": round(merge_wait, 1), "tables": sizes, "refresh": refresh,
            "sides": list(sides), "aggregate_forms_equal_to_raw": {"queries": len(equal), "rows": sum(equal.values())},
            "queries": per_query, "peak_rss_mib": peak_rss_mib(),
        }), flush=True)
        return 0
    finally:
        store.close()


INGEST_BATCHES = (20_000, 1_000)  # HUB_SINK_BATCH_MAX, and a small batch (a quiet stream)
INGEST_VIEWS = ("requests_per_second_mv", "requests_per_5_seconds_mv", "shadow_pairs_per_second_mv",
                "spans_per_second_mv")


def ingest_main(argv: list[str] | None = None) -> int:
    """The insert cost of the materialized views of migrations 0017 and 0018: the sink's insert path
    (``hub.storage.client.Store.insert``, a deduplication token per batch) into ``requests`` of a
    migrated store, and of a second database migrated the same way whose views are dropped; batch by
    batch alternating (which side goes first alternates), so load from elsewhere hits both alike."""
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_queries --ingest")
    parser.add_argument("--ingest", action="store_true")
    parser.add_argument("--rows", type=int, default=1_000_000, help="request legs inserted per side and batch size")
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)

    from hub.settings import load_settings
    from hub.storage.client import Store, open_store
    from hub.storage.migrations import migrate

    settings = load_settings({"HUB_HOME": str(Path(args.data_dir).resolve())})
    store = open_store(settings)
    try:
        migrate(store, settings)

        def migrated_without(suffix: str, views: tuple[str, ...]) -> Store:
            other = f"{settings.database}_{suffix}"
            store.command(f"CREATE DATABASE IF NOT EXISTS {other}")
            target = Store(store._client, other, store.dsn)
            target._lock = store._lock
            migrate(target, settings.with_overrides(database=other))
            for view in views:
                target.command(f"DROP VIEW IF EXISTS {other}.{view}")
            return target

        bare = migrated_without("noviews", INGEST_VIEWS)
        per_second = migrated_without("no5s", ("requests_per_5_seconds_mv",))  # 0017's views alone
        t0 = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(seconds=SPAN_S)
        rows = store.query(requests_select(args.rows, t0)).result_rows
        log(f"{len(rows):,} rows generated; inserting them in batches of {', '.join(map(str, INGEST_BATCHES))}")
        sides = {"with_views": store, "per_second_views": per_second, "without_views": bare}
        out = {}
        for batch in INGEST_BATCHES:
            chunks = [rows[i:i + batch] for i in range(0, len(rows), batch)]
            seconds = {side: 0.0 for side in sides}
            for n, chunk in enumerate(chunks):
                order = list(sides) if n % 2 == 0 else list(reversed(sides))
                for side in order:
                    target = sides[side]
                    started = time.perf_counter()
                    target.insert(f"{target.database}.requests", chunk, REQUEST_INSERT_COLUMNS,
                                  token=f"bench:{batch}:{n}")
                    seconds[side] += time.perf_counter() - started
            for side, target in sides.items():
                stored = int(target.scalar(f"SELECT count() FROM {target.database}.requests"))
                log(f"batch {batch}: {side} {len(rows) / seconds[side]:,.0f} rows/s ({stored:,} rows stored)")
            out[str(batch)] = {side: {"seconds": round(seconds[side], 3),
                                      "rows_per_s": round(len(rows) / seconds[side], 1)} for side in sides}
            rate = {side: out[str(batch)][side]["rows_per_s"] for side in sides}
            out[str(batch)]["with_over_without"] = round(rate["with_views"] / rate["without_views"], 4)
            out[str(batch)]["with_over_per_second_views"] = round(rate["with_views"] / rate["per_second_views"], 4)
            for target in sides.values():
                for table in ("requests", "requests_per_second", "requests_per_5_seconds"):
                    target.command(f"TRUNCATE TABLE {target.database}.{table}")
        print(json.dumps({"rows": len(rows), "batches": out, "peak_rss_mib": peak_rss_mib()}), flush=True)
        return 0
    finally:
        store.close()


def _per_query_table(result: dict) -> str:
    sides = result.get("sides", ["hub", "baseline"])
    names = {"hub": "raw", "per_second": "per-second", "aggregates": "aggregates", "baseline": "plain"}
    header = ("selection", "query", "reads requests", "aggregate") + tuple(
        f"{names[side]} {stat} ms" for side in sides for stat in ("median", "p95")) + ("aggregates/raw",)
    lines = [header]
    for q in result["queries"]:
        if q["selection"] != "all" and not q["reads_requests"]:
            continue  # the same query as with "all": the selection only changes queries of requests
        h, a = q["hub_seconds"], q["aggregates_seconds"]
        lines.append((q["selection"], f"{q['dashboard']}: {q['kind']} {q['title']}"[:70],
                      "yes" if q["reads_requests"] else "no", "equal" if q["aggregate"] else "-")
                     + tuple(f"{q[side + '_seconds'][stat] * 1000:,.1f}" for side in sides for stat in ("median", "p95"))
                     + (f"{a['median'] / h['median']:.2f}x" if h["median"] else "-",))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(w) if j < 4 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths))).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run(ctx: BenchContext) -> list[Result]:
    rows = max(ctx.size("dashboard_rows", DEFAULT_ROWS), 1000)
    repeats = int(ctx.sizes.get("dashboard_repeats") or DEFAULT_REPEATS)
    result = run_json_child(ctx, "the dashboard query benchmark", [
        "-m", "bench.dashboard_queries", "--rows", str(rows), "--repeats", str(repeats),
        "--data-dir", str(ctx.scratch / "dashboards-home")], timeout=max(1800.0, rows / 2000))
    label = f"{rows:,} rows"
    ctx.sections.append(f"dashboard queries over {label}, per query ({repeats} passes; ms; with the one-route "
                        "selection only the queries that read requests; aggregate: served by a per-second "
                        "aggregate, its rows equal to its raw form's):\n" + _per_query_table(result))
    gen = result["generation_seconds"]
    details = {k: v for k, v in result.items() if k != "queries"}
    out = [Result(f"dashboard data generation ({label})", gen["hub"], "s", gen["baseline"], higher_is_better=False,
                  details={"hub": "INSERT ... SELECT FROM numbers() into hub.requests (the migration's table, "
                                  "its materialized view filling requests_per_second)",
                           "baseline": "the same INSERT into requests_plain (MergeTree ORDER BY tuple())",
                           **details})]
    names = {"all": "all routes and legs", "one route": "one route, primary leg"}
    for sel, r in result["refresh"].items():
        for stat in ("median", "p95"):
            out.append(Result(f"dashboard refresh, {names[sel]} ({label}), {stat}", r["hub"][stat], "s",
                              r["baseline"][stat], higher_is_better=False,
                              details={"queries": r["queries"], "repeats": repeats, "hub": r["hub"],
                                       "baseline": r["baseline"],
                                       "per_query": [q for q in result["queries"] if q["selection"] == sel]}))
            out.append(Result(f"dashboard refresh from the per-second aggregates, {names[sel]} ({label}), {stat}",
                              r["aggregates"][stat], "s", r["hub"][stat], higher_is_better=False,
                              details={"queries": r["queries"], "repeats": repeats, "aggregates": r["aggregates"],
                                       "baseline": "the same dashboards on the raw tables (hub)",
                                       "equal_to_raw_form": result["aggregate_forms_equal_to_raw"]}))
    return out


def benchmarks():
    """(key, description, callable) of each benchmark of this module."""
    return [("dashboards", f"dashboard query latency over one experiment ({DEFAULT_ROWS:,} request legs by default), "
                           "hub schema vs a plain MergeTree, and the per-second aggregates vs the raw tables", run),
            ("aggregates-ingest", "insert rows/s into requests with the materialized views of migrations 0017 and 0018 vs without "
                                  "(1,000,000 rows by default, the sink's batch sizes)", run_ingest)]


def run_ingest(ctx: BenchContext) -> list[Result]:
    rows = max(ctx.size("dashboard_rows", 1_000_000), 1000)
    result = run_json_child(ctx, "the aggregate ingest benchmark", [
        "-m", "bench.dashboard_queries", "--ingest", "--rows", str(rows),
        "--data-dir", str(ctx.scratch / "aggregates-ingest-home")], timeout=1800.0)
    return [Result(f"requests insert with the per-second views, batches of {batch} ({rows:,} rows)",
                   r["with_views"]["rows_per_s"], "rows/s", r["without_views"]["rows_per_s"], higher_is_better=True,
                   details={"hub": "Store.insert into requests with migration 0017's views",
                            "baseline": "the same inserts into a store migrated alike, its views dropped", **r})
            for batch, r in result["batches"].items()]


if __name__ == "__main__":
    sys.exit(ingest_main() if "--ingest" in sys.argv[1:] else main())
