"""The dashboards' traffic, shadow and span panels over the per-second aggregates, and the same
definition over the raw rows.

Migration 0017 keeps, filled by materialized views on every insert:

- ``requests_per_second``: legs and failed legs per second, experiment, phase, route, leg,
  gateway, backend, status class and source, with the latencies as bucket counts of the abort
  judge's quantile sketch (``hub.abort.sketch``);
- ``shadow_pairs_per_second``: pairs per second, experiment, phase, route, gateway, shadow
  backend, outcome, noise and source;
- ``spans_per_second``: spans per second, experiment, phase, service and status code, with their
  durations (ms) as sketch buckets.

Migration 0018 keeps ``requests_per_5_seconds``, the same as ``requests_per_second`` per 5-second
cell (``GRAINS``). The latency quantile panels and the route table merge the cells wholly inside
their range from it when the panel's ``$__interval_s`` is a multiple of 5 (the table has no time
buckets), and the other seconds from ``requests_per_second`` (``grain_rows``): the same bucket
counts, about half as many entries to merge.

Each panel here is compiled twice from one definition: ``form="aggregate"`` reads the aggregate,
``form="raw"`` the raw table, and the two return the same rows (``tests/integration/
test_panel_aggregates.py`` checks it over random legs). The definition:

- **time**: whole seconds. A row belongs to the second ``toDateTime(event_time)``; the range is the
  seconds from ``$__fromTime`` to ``$__toTime`` inclusive (the raw form reads ``event_time <
  $__toTime + 1``: the last second whole, where ``$__timeFilter`` stops at its first instant);
  points are ``$__timeInterval`` buckets of those seconds, as before;
- **counts and rates**: legs, failed legs (``hub.abort.measure.REQUEST_FAILED_SQL``), pairs,
  mismatches (``PAIR_MISMATCH_SQL``), spans and failed spans; a rate is failed over all, as
  ``Float64`` division of the two counts. Exact;
- **quantiles**: the judge's sketch quantile: each latency's bucket ``ceil(ln(ms) / ln(gamma))``
  (``gamma = (1 + alpha) / (1 - alpha)``, ``alpha`` = ``hub.abort.sketch.ALPHA`` = 1 %, values at
  or below 0.001 ms in the zero bucket), the bucket of the element at rank ``floor(q * (n - 1))``
  of the sorted buckets, shown as ``2 gamma^b / (gamma + 1)``: within 1 % of the raw latency at that
  rank, and what the abort judge's sketch returns for the same legs. Bucket counts add up exactly
  over seconds and parts, so the aggregate's quantile equals the raw form's. (ClickHouse's
  ``quantile()`` samples a reservoir of 8192 values: not mergeable to the same result, and not what
  the judge computes.)
- **ties**: a table cut by ``LIMIT`` orders by its key last, so the same rows make the cut.

The generated dashboards (``dashboards.queries``) emit the aggregate form of each of these panels.
``panels(db, experiment_id, sources, recent_hours)`` lists every panel with its dashboard SQL
and both forms; ``aggregate_of(sql)`` finds the panel (and so the raw form) of a dashboard
statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hub.abort import measure
from hub.abort.sketch import _GAMMA, _LOG_GAMMA, _MIN

FORMS = ("aggregate", "raw")
ZERO_BUCKET = -(1 << 30)

ROUTE_FILTER = "$__conditionalAll(route IN (${route:singlequote}), $route)"
LEG_FILTER = "$__conditionalAll(leg IN (${leg:singlequote}), $leg)"
SERVICE_FILTER = "$__conditionalAll(ServiceName IN (${service:singlequote}), $service)"


def lit(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def bucket_sql(value: str) -> str:
    """The sketch bucket of a latency in ms (as migration 0017 stores it)."""
    return (f"if({value} <= {_MIN!r}, toInt32({ZERO_BUCKET}), toInt32(ceil(log({value}) / {_LOG_GAMMA!r})))")


def bucket_value_sql(bucket: str) -> str:
    """The value a bucket stands for (``hub.abort.sketch.value_of``)."""
    return f"if({bucket} = {ZERO_BUCKET}, 0., 2 * pow({_GAMMA!r}, {bucket}) / ({_GAMMA!r} + 1))"


def _rank(q: float, n: str) -> str:
    return f"floor({float(q)!r} * (toInt64({n}) - 1))"


def raw_quantile_sql(q: float, value: str) -> str:
    """The sketch quantile as an aggregate over raw rows: the element at rank floor(q (n - 1)) of
    the sorted buckets."""
    return bucket_value_sql(f"arrayElement(arraySort(groupArray({bucket_sql(value)})), "
                            f"toInt64({_rank(q, 'count()')}) + 1)")


def merged_quantile_sql(q: float, merged: str) -> str:
    """The sketch quantile of merged bucket counts ``merged`` (``sumMap`` of bucket states: keys
    sorted ascending, counts): the first bucket whose running count passes the rank."""
    return bucket_value_sql(f"arrayElement({merged}.1, arrayFirstIndex(c -> c > {_rank(q, f'arraySum({merged}.2)')}, "
                            f"arrayCumSum({merged}.2)))")


@dataclass(frozen=True)
class Source:
    raw: str            # raw table
    aggregate: str      # aggregate table
    time: str           # raw time column
    experiment: str     # experiment column (both tables)
    count: str          # the aggregate's count column
    value: str = ""     # the raw latency (ms) expression
    buckets: str = ""   # the aggregate's bucket column


@dataclass(frozen=True)
class Grain:
    """A coarser copy of a per-second aggregate: the same columns and keys, one row per cell of
    ``seconds`` (``second``: the cell's first second, a multiple of ``seconds`` since the epoch)."""
    table: str
    seconds: int


REQUESTS = Source("requests", "requests_per_second", "event_time", "experiment_id", "legs",
                  "toFloat64(latency_ms)", "latency_buckets")
#: Coarser grains of each aggregate, coarsest first (migration 0018).
GRAINS = {"requests_per_second": (Grain("requests_per_5_seconds", 5),)}
PAIRS = Source("shadow_pairs", "shadow_pairs_per_second", "event_time", "experiment_id", "pair_count")
SPANS = Source("otel_traces", "spans_per_second", "Timestamp", "ExperimentId", "span_count",
               "(Duration / 1e6)", "duration_buckets")


class _Form:
    """The pieces of a panel's SQL in one form."""

    def __init__(self, db: str, source: Source, form: str, grains: bool = True):
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, not {form!r}")
        self.db, self.s, self.form, self.grains = db, source, form, grains
        self.agg = form == "aggregate"

    @property
    def table(self) -> str:
        return f"{self.db}.{self.s.aggregate if self.agg else self.s.raw}"

    @property
    def bucket(self) -> str:
        return "$__timeInterval(second)" if self.agg else f"$__timeInterval({self.s.time})"

    @property
    def in_range(self) -> str:
        t = self.s.time
        return "$__timeFilter(second)" if self.agg else f"{t} >= $__fromTime AND {t} < $__toTime + 1"

    def rows(self, where: str, filters: str, time_buckets: bool) -> tuple[str, str]:
        """``(FROM, WHERE)`` of the rows a quantile panel merges: on the aggregate, each grain's
        cells wholly inside the time range from the coarsest grain that fits (``grain_rows``), the
        rest from the per-second rows; else ``where`` over the table."""
        if not self.agg or not self.grains or not GRAINS.get(self.s.aggregate):
            return self.table, where
        return grain_rows(self.db, self.s.aggregate, filters, time_buckets), ""

    def count(self) -> str:
        return f"sum({self.s.count})" if self.agg else "count()"

    def count_if(self, condition: str) -> str:
        return f"sumIf({self.s.count}, {condition})" if self.agg else f"countIf({condition})"

    def failed(self) -> str:
        """Failed request legs (the aggregate keeps them as a column)."""
        return "sum(failed_legs)" if self.agg else f"countIf({measure.REQUEST_FAILED_SQL})"

    def inner_quantiles(self, names_levels: list[tuple[str, float]]) -> tuple[str, list[str]]:
        """(select items of the inner aggregation, outer expressions of each quantile)."""
        if self.agg:
            return f"sumMap({self.s.buckets}) AS m", [f"{merged_quantile_sql(q, 'm')} AS {n}" for n, q in names_levels]
        return "", [f"{raw_quantile_sql(q, self.s.value)} AS {n}" for n, q in names_levels]

    def sources(self, experiment_id: str, sources: str) -> str:
        """Which request legs count (``hub.abort.sources``); on the aggregate, asked of the aggregate."""
        selected = measure.request_source_sql(self.db, experiment_id, sources)
        if self.agg:
            selected = selected.replace(f"FROM {self.db}.requests WHERE", f"FROM {self.table} WHERE")
        return selected


def _and(*parts: str) -> str:
    return " AND ".join(p for p in parts if p and p != "1")


def _cells(grain: Grain, time_buckets: bool) -> tuple[str, str, str]:
    """``(fits, first, end)``: whether the grain serves the panel (its cells fit in the panel's
    ``$__interval_s`` buckets, or the panel has none), the first second of its first cell inside
    the time range and the second after its last one (the range's seconds: ``$__fromTime`` to
    ``$__toTime`` inclusive)."""
    n = grain.seconds
    fits = f"$__interval_s % {n} = 0" if time_buckets else "1"
    first = f"toDateTime(intDiv(toUnixTimestamp($__fromTime) + {n - 1}, {n}) * {n}, 'UTC')"
    end = f"toDateTime(intDiv(toUnixTimestamp($__toTime) + 1, {n}) * {n}, 'UTC')"
    return fits, first, end


def grain_rows(db: str, aggregate: str, filters: str, time_buckets: bool) -> str:
    """The rows of a per-second aggregate over the panel's time range, as a subquery, each second
    read once from the coarsest grain (``GRAINS``) that fits the panel and whose cell holding it lies
    wholly inside the range; the seconds at the range's edges (and every second when no grain fits)
    from the per-second rows. A grain's cells hold exactly the sums of their seconds' rows, so any
    merge of these rows equals the merge of the per-second rows of the range. ``fits`` is a
    constant once the plugin has expanded ``$__interval_s``: the engine drops a grain that does not
    fit before it reads anything."""
    grains = GRAINS.get(aggregate, ())
    parts, coarser = [], ""  # the cells of the next coarser grain
    for grain in list(grains) + [Grain(aggregate, 1)]:
        fits, first, end = _cells(grain, time_buckets)
        cells = _and(fits, f"second >= {first}", f"second < {end}")
        mine = "$__timeFilter(second)" if grain.seconds == 1 else cells
        parts.append(f"SELECT * FROM {db}.{grain.table} WHERE {_and(filters, mine, coarser and f'NOT ({coarser})')}")
        coarser = cells
    return "(" + " UNION ALL ".join(parts) + ")"


def _requests_where(f: _Form, experiment_id: str, sources: str, in_range: bool = True) -> str:
    return _and(f"experiment_id = {lit(experiment_id)}", f.in_range if in_range else "1", ROUTE_FILTER, LEG_FILTER,
                f.sources(experiment_id, sources))


def _quantile_select(f: _Form, keys: list[str], aggregates: list[str], quantiles: list[tuple[str, float]],
                     where: str, order: str, filters: str = "", time_buckets: bool = True) -> str:
    """SELECT keys, aggregates, quantiles ... GROUP BY keys: on the aggregate the buckets are merged
    in a subquery and the quantiles read from them outside. ``filters``: ``where`` without the time
    range, for an aggregate with coarser grains (``_Form.rows``)."""
    inner, outer = f.inner_quantiles(quantiles)
    key_names = [k.split(" AS ")[-1] for k in keys]
    if not inner:
        return (f"SELECT {', '.join(keys + aggregates + outer)} FROM {f.table} WHERE {where} "
                f"GROUP BY {', '.join(key_names)} ORDER BY {order}")
    table, where = f.rows(where, filters, time_buckets)
    agg_names = [a.split(" AS ")[-1] for a in aggregates]
    return (f"SELECT {', '.join(key_names + agg_names + outer)} FROM (SELECT {', '.join(keys + aggregates + [inner])} "
            f"FROM {table}{f' WHERE {where}' if where else ''} GROUP BY {', '.join(key_names)}) ORDER BY {order}")


# ---- traffic per leg and per route -------------------------------------------------------------
def request_rate(db: str, experiment_id: str, by: str, sources: str = "auto", *, form: str = "aggregate") -> str:
    f = _Form(db, REQUESTS, form)
    return (f"SELECT {f.bucket} AS time, {by}, {f.count()} / $__interval_s AS requests_per_s FROM {f.table} "
            f"WHERE {_requests_where(f, experiment_id, sources)} GROUP BY time, {by} ORDER BY time, {by}")


def error_rate(db: str, experiment_id: str, by: str, sources: str = "auto", *, form: str = "aggregate") -> str:
    f = _Form(db, REQUESTS, form)
    return (f"SELECT {f.bucket} AS time, {by}, {f.failed()} / {f.count()} AS error_rate FROM {f.table} "
            f"WHERE {_requests_where(f, experiment_id, sources)} GROUP BY time, {by} ORDER BY time, {by}")


def latency_quantiles(db: str, experiment_id: str, by: str, sources: str = "auto", *, form: str = "aggregate",
                      grains: bool = True) -> str:
    """p50, p95 and p99 per ``$__timeInterval`` and ``by``; ``grains=False``: the aggregate form
    from the per-second rows alone (what a coarser grain must equal)."""
    f = _Form(db, REQUESTS, form, grains)
    return _quantile_select(f, [f"{f.bucket} AS time", by], [], [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)],
                            _requests_where(f, experiment_id, sources), f"time, {by}",
                            _requests_where(f, experiment_id, sources, in_range=False))


def route_summary(db: str, experiment_id: str, sources: str = "auto", *, form: str = "aggregate",
                  grains: bool = True) -> str:
    f = _Form(db, REQUESTS, form, grains)
    return _quantile_select(f, ["route", "leg"], [f"{f.count()} AS requests", f"{f.failed()} / requests AS error_rate"],
                            [("p50_ms", 0.5), ("p99_ms", 0.99)], _requests_where(f, experiment_id, sources),
                            "requests DESC, route, leg", _requests_where(f, experiment_id, sources, in_range=False),
                            time_buckets=False)


# ---- overview -----------------------------------------------------------------------------------
def _room(db: str, recent_hours: float) -> str:
    seconds = max(0, int(round(recent_hours * 3600)))
    return (f"(SELECT experiment_id FROM {db}.experiments WHERE (status = 'running' OR (ended_at IS NOT NULL AND "
            f"ended_at >= now64(3) - toIntervalSecond({seconds}))))")


def overview_error_rate(db: str, recent_hours: float = 6.0, *, form: str = "aggregate") -> str:
    f = _Form(db, REQUESTS, form)
    return (f"SELECT {f.bucket} AS time, experiment_id, {f.failed()} / {f.count()} AS error_rate FROM {f.table} "
            f"WHERE {f.in_range} AND experiment_id IN {_room(db, recent_hours)} "
            f"GROUP BY time, experiment_id ORDER BY time, experiment_id")


def overview_request_rate(db: str, recent_hours: float = 6.0, *, form: str = "aggregate") -> str:
    f = _Form(db, REQUESTS, form)
    return (f"SELECT {f.bucket} AS time, experiment_id, {f.count()} / $__interval_s AS requests_per_s FROM {f.table} "
            f"WHERE {f.in_range} AND experiment_id IN {_room(db, recent_hours)} "
            f"GROUP BY time, experiment_id ORDER BY time, experiment_id")


# ---- template variables -------------------------------------------------------------------------
def variable_routes(db: str, experiment_id: str, planned: list[str], *, form: str = "aggregate") -> str:
    f = _Form(db, REQUESTS, form)
    planned_sql = "[" + ", ".join(lit(p) for p in planned) + "]"
    return (f"SELECT route FROM (SELECT arrayJoin(CAST({planned_sql}, 'Array(String)')) AS route "
            f"UNION DISTINCT SELECT DISTINCT toString(route) FROM {f.table} WHERE experiment_id = {lit(experiment_id)}) "
            f"WHERE route != '' ORDER BY route")


def variable_legs(db: str, experiment_id: str, *, form: str = "aggregate") -> str:
    f = _Form(db, REQUESTS, form)
    return (f"SELECT leg FROM (SELECT arrayJoin(['primary', 'shadow', 'canary']) AS leg "
            f"UNION DISTINCT SELECT DISTINCT toString(leg) FROM {f.table} WHERE experiment_id = {lit(experiment_id)}) "
            f"WHERE leg != '' ORDER BY leg")


def variable_services(db: str, experiment_id: str, planned: list[str], *, form: str = "aggregate") -> str:
    f = _Form(db, SPANS, form)
    planned_sql = "[" + ", ".join(lit(p) for p in planned) + "]"
    return (f"SELECT service FROM (SELECT arrayJoin(CAST({planned_sql}, 'Array(String)')) AS service "
            f"UNION DISTINCT SELECT DISTINCT toString(ServiceName) FROM {f.table} "
            f"WHERE ExperimentId = {lit(experiment_id)}) WHERE service != '' ORDER BY service")


# ---- shadow comparison --------------------------------------------------------------------------
def shadow_outcomes(db: str, experiment_id: str, *, form: str = "aggregate") -> str:
    f = _Form(db, PAIRS, form)
    return (f"SELECT {f.bucket} AS time, outcome, {f.count()} AS pairs FROM {f.table} "
            f"WHERE experiment_id = {lit(experiment_id)} AND {f.in_range} AND {ROUTE_FILTER} "
            f"GROUP BY time, outcome ORDER BY time, outcome")


def shadow_top_routes(db: str, experiment_id: str, *, form: str = "aggregate") -> str:
    f = _Form(db, PAIRS, form)
    return (f"SELECT route, {f.count_if(measure.PAIR_MISMATCH_SQL)} AS differing, "
            f"{f.count_if(measure.PAIR_COUNTED_SQL)} AS pairs, "
            f"if(pairs = 0, NULL, differing / pairs) AS mismatch_rate FROM {f.table} "
            f"WHERE experiment_id = {lit(experiment_id)} AND {f.in_range} AND {ROUTE_FILTER} "
            f"GROUP BY route ORDER BY differing DESC, pairs DESC, route LIMIT 10")


# ---- spans --------------------------------------------------------------------------------------
def span_error_rate(db: str, experiment_id: str, *, form: str = "aggregate") -> str:
    f = _Form(db, SPANS, form)
    return (f"SELECT {f.bucket} AS time, ServiceName AS service, "
            f"{f.count_if(measure.SPAN_FAILED_SQL)} / {f.count()} AS span_error_rate FROM {f.table} "
            f"WHERE ExperimentId = {lit(experiment_id)} AND {f.in_range} AND {SERVICE_FILTER} "
            f"GROUP BY time, service ORDER BY time, service")


def span_latency(db: str, experiment_id: str, *, form: str = "aggregate") -> str:
    f = _Form(db, SPANS, form)
    return _quantile_select(f, [f"{f.bucket} AS time", "ServiceName AS service"], [],
                            [("p50_ms", 0.5), ("p99_ms", 0.99)],
                            f"ExperimentId = {lit(experiment_id)} AND {f.in_range} AND {SERVICE_FILTER}",
                            "time, service")


# ---- every panel ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    name: str
    dashboard_sql: str  # the statement dashboards.queries generates (the aggregate form)
    raw: str            # this module's definition over the raw table
    aggregate: str      # the same over the aggregate
    per_second: str = ""  # the aggregate form from the per-second rows alone, when it reads coarser grains


def panels(db: str, experiment_id: str, sources: str = "auto", recent_hours: float = 6.0,
           planned_routes: list[str] | None = None, planned_services: list[str] | None = None) -> list[Panel]:
    """Every panel (and variable) of the experiment and room dashboards that an aggregate serves,
    with the dashboard's statement (``dashboards.queries``: the aggregate form) and both forms."""
    from dashboards import queries as Q

    def both(fn: Callable[..., str], *args: Any, **kw: Any) -> tuple[str, str]:
        return fn(*args, form="raw", **kw), fn(*args, form="aggregate", **kw)

    out = []
    for by in ("leg", "route"):
        for name, fn in (("request_rate", request_rate), ("error_rate", error_rate)):
            out.append(Panel(f"{name} by {by}", getattr(Q, name)(db, experiment_id, by, sources),
                             *both(fn, db, experiment_id, by, sources)))
        out.append(Panel(f"latency_quantiles by {by}", Q.latency_quantiles(db, experiment_id, by, sources),
                         *both(latency_quantiles, db, experiment_id, by, sources),
                         latency_quantiles(db, experiment_id, by, sources, grains=False)))
    out.append(Panel("route_summary", Q.route_summary(db, experiment_id, sources),
                     *both(route_summary, db, experiment_id, sources),
                     route_summary(db, experiment_id, sources, grains=False)))
    out.append(Panel("overview_error_rate", Q.overview_error_rate(db, recent_hours),
                     *both(overview_error_rate, db, recent_hours)))
    out.append(Panel("overview_request_rate", Q.overview_request_rate(db, recent_hours),
                     *both(overview_request_rate, db, recent_hours)))
    out.append(Panel("shadow_outcomes", Q.shadow_outcomes(db, experiment_id), *both(shadow_outcomes, db, experiment_id)))
    out.append(Panel("shadow_top_routes", Q.shadow_top_routes(db, experiment_id),
                     *both(shadow_top_routes, db, experiment_id)))
    out.append(Panel("span_error_rate", Q.span_error_rate(db, experiment_id), *both(span_error_rate, db, experiment_id)))
    out.append(Panel("span_latency", Q.span_latency(db, experiment_id), *both(span_latency, db, experiment_id)))
    if planned_routes is not None:
        out.append(Panel("variable_routes", Q.variable_routes(db, experiment_id, planned_routes),
                         *both(variable_routes, db, experiment_id, planned_routes)))
    if planned_services is not None:
        out.append(Panel("variable_services", Q.variable_services(db, experiment_id, planned_services),
                         *both(variable_services, db, experiment_id, planned_services)))
    out.append(Panel("variable_legs", Q.variable_legs(db, experiment_id), *both(variable_legs, db, experiment_id)))
    return out


def aggregate_of(sql: str, candidates: list[Panel]) -> Panel | None:
    """The panel whose dashboard statement is ``sql`` (before macro expansion), if an aggregate serves it."""
    for p in candidates:
        if p.dashboard_sql == sql:
            return p
    return None
