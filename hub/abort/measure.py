"""One measurement definition, compiled twice: the streaming evaluation and ClickHouse SQL.

What an abort rule or a steady-state measurement measures is defined here once, and nowhere else:

- **sources**: request legs (``requests``), shadow pairs (``shadow_pairs``) or spans
  (``otel_traces``), by the measurement (``source_of``);
- **scope** (and a steady-state ``filter``): ``leg``, ``route``, ``gateway``, ``backend``,
  ``service`` and ``target``. A request leg has no service name of its own: ``service`` matches a
  leg whose gateway *or* backend has that name (a span: its service name). ``target`` matches the
  gateway, backend, route or service. A pair is a shadow leg: its backend is the shadow backend;
  spans have no leg, so a scope with a leg matches no span;
- **failed**: a request leg with no response (status 0), status >= 500 or an error text; a span
  with status ``Error``; a shadow pair whose statuses differ, or whose bodies differ in fields
  that are not noise (``status_mismatch`` always, ``body_mismatch`` unless ``noise``). Latency
  regressions, missing or failed shadow calls are not mismatches; a pair whose primary failed
  (``primary_failed``) says nothing about the shadow version and is not counted at all
  (``PAIR_COUNTED_SQL``: neither a mismatch nor one of the pairs);
- **values**: rates are failed over all in scope; ``request_rate`` is legs per second of the window;
  quantiles are the element at rank ``floor(q * (n - 1))`` of the sorted latencies (the judge's
  sketch returns that element to within ``hub.abort.sketch.ALPHA`` relative error); ``count`` and
  ``ratio`` use ``where``/``of`` (``hub.abort.match``);
- **control groups**: the value is the experiment group's rate minus the control group's when a
  one-sided pooled two-proportion z-test finds it significant at ``confidence``, else 0;
- **window**: an evaluation at second ``at`` covers the whole seconds ``(at - ceil(window), at]``.

``evaluate(condition, cells, window)`` is the judge's evaluation over rollup cells;
``aggregate_sql`` gives the same value as SQL over the rows of a window, which
``window_sql`` (Grafana alert rules, the window ending at the evaluation's second) and
``series_sql`` (dashboard panels, one window per point; from the per-second aggregates of
migration 0017 when they hold what the measurement counts, ``served``) wrap. ``tests/property/`` checks that
they agree on random legs and random rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hub.abort.sketch import QuantileSketch
from hub.stats import normal_sf, two_proportion_p_value  # noqa: F401 - the control-group test, written once

QUANTILES = {"latency_p50": 0.5, "latency_p90": 0.9, "latency_p95": 0.95, "latency_p99": 0.99}
RATES = ("error_rate", "span_error_rate", "shadow_mismatch_rate")
CUSTOM = ("count", "ratio")
_SOURCE = {"span_error_rate": "spans", "shadow_mismatch_rate": "pairs"}
SCOPE_KEYS = ("leg", "route", "gateway", "backend", "service", "target")

#: A failed request leg, a failed span, a real shadow mismatch, as SQL.
REQUEST_FAILED_SQL = "(status >= 500 OR status = 0 OR error != '')"
SPAN_FAILED_SQL = "(StatusCode = 'Error')"
PAIR_MISMATCH_SQL = "(outcome = 'status_mismatch' OR (outcome = 'body_mismatch' AND NOT noise))"
#: The shadow pairs a measurement counts: those whose primary answered.
PAIR_COUNTED_SQL = "(outcome != 'primary_failed')"


def request_failed(status: int, error: str) -> bool:
    return status >= 500 or status == 0 or bool(error)


def pair_mismatch(outcome: str, noise: bool) -> bool:
    """A real difference between primary and shadow: a status difference is never noise."""
    return outcome == "status_mismatch" or (outcome == "body_mismatch" and not noise)


def pair_counted(outcome: str) -> bool:
    """Whether a measurement counts a shadow pair: not when its primary failed (``primary_failed``)."""
    return outcome != "primary_failed"


@dataclass(frozen=True)
class Table:
    name: str
    time: str
    experiment: str
    latency: str
    failed: str
    # SQL of each field of a rollup cell (leg, route, gateway, backend, service) on this table
    columns: dict = field(default_factory=dict)
    # the rows of the table a measurement counts at all (the rollups hold only those)
    counted: str = "1"


TABLES = {
    "requests": Table("requests", "event_time", "experiment_id", "latency_ms", REQUEST_FAILED_SQL,
                      {"leg": "leg", "route": "route", "gateway": "gateway", "backend": "backend", "service": "''"}),
    "pairs": Table("shadow_pairs", "event_time", "experiment_id", "latency_shadow_ms", PAIR_MISMATCH_SQL,
                   {"leg": "'shadow'", "route": "route", "gateway": "gateway", "backend": "shadow_backend",
                    "service": "''"}, PAIR_COUNTED_SQL),
    "spans": Table("otel_traces", "Timestamp", "ExperimentId", "(Duration / 1e6)", SPAN_FAILED_SQL,
                   {"leg": "''", "route": "SpanName", "gateway": "''", "backend": "''", "service": "ServiceName"}),
}


@dataclass(frozen=True)
class Aggregate:
    """A source's per-second aggregate (migration 0017): its count column, its failed-rows column
    when it keeps one, its latency sketch buckets (``hub.sql.aggregates``)."""
    name: str
    count: str
    failed: str = ""
    buckets: str = ""


#: The aggregates a panel's measurement can be read from instead of the raw rows (the same
#: experiment and scope columns; spans keep no ``SpanName``, so a span scope on a route cannot).
AGGREGATES = {
    "requests": Aggregate("requests_per_second", "legs", "failed_legs", "latency_buckets"),
    "pairs": Aggregate("shadow_pairs_per_second", "pair_count"),
    "spans": Aggregate("spans_per_second", "span_count", "", "duration_buckets"),
}


def source_of(measurement: str) -> str:
    """The rollup source a measurement is counted from (``requests``, ``spans`` or ``pairs``)."""
    return _SOURCE.get(measurement, "requests")


def table_of(measurement: str) -> Table:
    return TABLES[source_of(measurement)]


def lit(value: Any) -> str:
    """A ClickHouse string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def scope_items(scope) -> dict[str, str]:
    """The keys a scope (``AbortScope``, a steady-state ``MeasurementFilter`` or a dict) sets."""
    if scope is None:
        return {}
    get = scope.get if isinstance(scope, dict) else (lambda k: getattr(scope, k, None))
    values = {k: get(k) for k in SCOPE_KEYS}
    return {k: v for k, v in values.items() if v}


# ---- the streaming form: rollup cells ----------------------------------------------------------
def matches(cell, scope) -> bool:
    """Whether a rollup cell is in scope."""
    for key, value in scope_items(scope).items():
        if key == "service":
            if value not in (cell.service, cell.gateway, cell.backend):
                return False
        elif key == "target":
            if value not in (cell.gateway, cell.backend, cell.route, cell.service):
                return False
        elif getattr(cell, key) != value:
            return False
    return True


# ---- the SQL form ------------------------------------------------------------------------------
def _any_of(value: str, columns: list[str]) -> str:
    """``value`` equals one of the columns; a column that is a constant of the table
    (``'shadow'``, ``''``) is decided here."""
    constants = [c[1:-1] for c in columns if c.startswith("'")]
    if value in constants:
        return "1"
    names = [c for c in columns if not c.startswith("'")]
    if not names:
        return "0"
    return f"{names[0]} = {lit(value)}" if len(names) == 1 else f"{lit(value)} IN ({', '.join(names)})"


def scope_sql(source: str, scope) -> str:
    """The same scope as a ClickHouse condition on the source's table (``1`` for none), on the
    rows a measurement counts (``Table.counted``)."""
    cols = TABLES[source].columns
    parts = [TABLES[source].counted]
    for key, value in scope_items(scope).items():
        if key == "service":
            parts.append(_any_of(value, [cols["service"], cols["gateway"], cols["backend"]]))
        elif key == "target":
            parts.append(_any_of(value, [cols["gateway"], cols["backend"], cols["route"], cols["service"]]))
        else:
            parts.append(_any_of(value, [cols[key]]))
    parts = [p for p in parts if p != "1"]
    if "0" in parts:
        return "0"
    return "(" + " AND ".join(parts) + ")" if parts else "1"


def _and(*conditions: str) -> str:
    parts = [c for c in conditions if c != "1"]
    return " AND ".join(parts) if parts else "1"


def _p_value_sql(e_a: str, n_a: str, e_b: str, n_b: str) -> str:
    """``hub.stats.two_proportion_p_value`` (one-sided, pooled) as SQL over the four counts."""
    p_a, p_b = f"({e_a} / {n_a})", f"({e_b} / {n_b})"
    pooled = f"(({e_a} + {e_b}) / ({n_a} + {n_b}))"
    variance = f"({pooled} * (1 - {pooled}) * (1 / {n_a} + 1 / {n_b}))"
    return (f"if({variance} <= 0, if({p_a} > {p_b}, 0., 1.), "
            f"0.5 * erfc((({p_a} - {p_b}) / sqrt({variance})) / sqrt(2)))")


def _window_seconds(window: float) -> int:
    return max(int(math.ceil(window)), 1)


def aggregate_sql(condition, *, window: float | None = None, scope=None, seconds: str | None = None,
                  source: str | None = None, form: str = "raw") -> tuple[str, str, str]:
    """``(value, samples, rows)``: the condition's value and sample count as ClickHouse aggregates
    over the rows of one window that satisfy ``rows`` (its scope, or scope or control group).

    ``condition``: an abort condition, or anything with ``measurement`` (a steady-state
    measurement passes ``scope`` explicitly and ``window``). ``seconds``: the SQL of the window's
    length for ``request_rate`` (the window by default). ``source``: the table's source when not
    the measurement's own (``steady_source``). ``form="aggregate"``: the same value over the rows
    of the source's per-second aggregate (``AGGREGATES``; ``served`` says whether it can), a
    quantile as the judge's sketch computes it.
    """
    from hub.abort.match import sql as match_sql

    kind = getattr(condition, "measurement", None) or getattr(condition, "sli")
    source = source or source_of(kind)
    table = TABLES[source]
    if scope is None:
        scope = getattr(condition, "scope", None)
    in_scope = scope_sql(source, scope)
    control = getattr(condition, "control", None)
    w = float(window if window is not None else _window_seconds_of(condition))
    where, of = getattr(condition, "where", None), getattr(condition, "of", None)
    if kind in CUSTOM:
        hit, base = f"({match_sql(where)} AND {match_sql(of)})", match_sql(of)
    else:
        hit, base = table.failed, "1"
    agg = AGGREGATES[source] if form == "aggregate" else None

    def count(rows: str) -> str:
        if agg is None:
            return f"countIf({rows})"
        return f"sum({agg.count})" if rows == "1" else f"sumIf({agg.count}, {rows})"

    def failed(rows: str) -> str:
        if agg is not None and agg.failed and hit == table.failed:
            return f"sum({agg.failed})" if rows == "1" else f"sumIf({agg.failed}, {rows})"
        return count(_and(rows, hit))

    n_a, e_a = count(_and(in_scope, base)), failed(in_scope)
    if control is not None and (kind in RATES or kind == "ratio"):
        in_control = scope_sql(source, control)
        n_b, e_b = count(_and(in_control, base)), failed(in_control)
        alpha = 1 - (getattr(condition, "confidence", 0.99) or 0.99)
        value = (f"multiIf({n_a} = 0 OR {n_b} = 0, NULL, {_p_value_sql(e_a, n_a, e_b, n_b)} < {alpha!r}, "
                 f"{e_a} / {n_a} - {e_b} / {n_b}, 0.)")
        return value, f"least({n_a}, {n_b})", f"({in_scope} OR {in_control})"
    if kind == "count":
        return f"toFloat64(countIf({_and(in_scope, match_sql(where))}))", f"countIf({in_scope})", in_scope
    if kind in RATES or kind == "ratio":
        return f"if({n_a} = 0, NULL, {e_a} / {n_a})", n_a, in_scope
    if kind == "request_rate":
        return f"{n_a} / {seconds or repr(w)}", n_a, in_scope
    if kind in QUANTILES and agg is not None:
        from hub.sql.aggregates import merged_quantile_sql

        merged = f"sumMap({agg.buckets})" if in_scope == "1" else f"sumMapIf({agg.buckets}, {in_scope})"
        return f"if({n_a} = 0, NULL, {merged_quantile_sql(QUANTILES[kind], merged)})", n_a, in_scope
    if kind in QUANTILES:
        q = QUANTILES[kind]
        sorted_ = f"arraySort(groupArrayIf(toFloat64({table.latency}), {in_scope}))" if in_scope != "1" else \
            f"arraySort(groupArray(toFloat64({table.latency})))"
        value = f"if({n_a} = 0, NULL, arrayElement({sorted_}, toInt64(floor({q!r} * (toInt64({n_a}) - 1))) + 1))"
        return value, n_a, in_scope
    raise ValueError(f"no SQL for measurement {kind!r}")


def _window_seconds_of(condition) -> float:
    from hub.experiments.definition import parse_duration

    return parse_duration(condition.window)


def steady_source(measurement) -> str:
    """The source a steady-state measurement is counted from: spans when it says ``source: spans``
    (error rate and latency of spans), else its SLI's own."""
    declared = measurement.get("source") if isinstance(measurement, dict) else getattr(measurement, "source", None)
    sli = measurement.get("sli") if isinstance(measurement, dict) else measurement.sli
    return "spans" if declared == "spans" else source_of(sli or "")  # no SLI: counted from requests


def request_source_sql(db: str, experiment_id: str, selection: str = "auto") -> str:
    """Which request legs a measurement counts (``hub.abort.sources``); ``1`` for all."""
    from hub.abort.sources import selection_sql

    return selection_sql(db, experiment_id, selection)


def _base_where(db: str, experiment_id: str, source: str, rows: str, sources: str) -> str:
    table = TABLES[source]
    selected = request_source_sql(db, experiment_id, sources) if source == "requests" else "1"
    return _and(f"{table.experiment} = {lit(experiment_id)}", rows, selected)


def run_span_sql(db: str, experiment_id: str, grace: float = 0.0) -> tuple[str, str]:
    """``(start, end)``: the first and last second an experiment's rules act in (its start, its end
    plus ``abort_grace``; ``hub.abort.run.RunSpan``), as scalar SQL (NULL before the start, or while running)."""
    experiment = f"FROM {db}.experiments WHERE experiment_id = {lit(experiment_id)}"
    return (f"(SELECT any(toUnixTimestamp(started_at)) {experiment})",
            f"(SELECT any(toUInt32(floor(toUnixTimestamp64Milli(ended_at) / 1000 + {float(grace)!r}))) {experiment})")


def _rows_of(db: str, source: str, where: str, form: str) -> tuple[str, str, str]:
    """``(table, time column, where)`` of the rows a measurement reads in ``form``: the raw table,
    or its per-second aggregate (whole seconds; the source selection asked of the aggregate)."""
    if form != "aggregate":
        return TABLES[source].name, TABLES[source].time, where
    name = AGGREGATES[source].name
    return name, "second", where.replace(f"FROM {db}.requests WHERE", f"FROM {db}.{name} WHERE")


def window_sql(db: str, experiment_id: str, condition, *, end: str = "toUnixTimestamp($__toTime)",
               sources: str = "auto", grace: float | None = None, form: str = "raw") -> str:
    """``SELECT value, samples``: the condition over the window ending at second ``end`` (SQL),
    NULL below ``min_samples``, as the judge evaluates it at that second.

    With ``grace`` (the definition's ``abort_grace`` in seconds), the value is NULL outside the run
    (before the start, after the end plus the grace) and the window holds only seconds from the
    start on, as the judge's (``hub.abort.run``). ``form="aggregate"``: from the source's per-second
    aggregate when it holds what the measurement counts (``served``; else the raw rows), a
    quantile as the judge's sketch."""
    kind = condition.measurement
    source = source_of(kind)
    window = _window_seconds_of(condition)
    w = _window_seconds(window)
    if form == "aggregate" and not served(condition):
        form = "raw"
    if kind == "absence":
        return absence_sql(db, experiment_id, condition, end=end, sources=sources, grace=grace, form=form)
    value, samples, rows = aggregate_sql(condition, window=window, form=form)
    name, time, where = _rows_of(db, source, _base_where(db, experiment_id, source, rows, sources), form)
    inside, from_start = "1", "1"
    if grace is not None:
        run_start, run_end = run_span_sql(db, experiment_id, grace)
        inside = f"({run_start} IS NOT NULL AND {end} >= {run_start} AND ({run_end} IS NULL OR {end} <= {run_end}))"
        from_start = f"toUnixTimestamp({time}) >= ifNull({run_start}, 0)"
    return (f"SELECT if({_and(inside, f'samples >= {int(condition.min_samples)}')}, v, NULL) AS value, samples FROM "
            f"(SELECT {value} AS v, {samples} AS samples FROM {db}.{name} WHERE {where} "
            f"AND {time} >= toDateTime({end} - {w}) AND toUnixTimestamp({time}) BETWEEN {end} - {w - 1} "
            f"AND {end} AND {from_start})")


def absence_sql(db: str, experiment_id: str, condition, *, end: str, sources: str = "auto",
                grace: float | None = None, form: str = "raw") -> str:
    """Seconds since the last record in scope, at second ``end``. With ``grace``: counted from the
    start when nothing came since, NULL outside the run (as the judge); without: the window's
    length when nothing came at all. ``form="aggregate"``: the last second from the per-second
    aggregate (the second of the last record, what the raw form counts from)."""
    source = source_of(condition.measurement)
    w = _window_seconds(_window_seconds_of(condition))
    name, time, where = _rows_of(db, source, _base_where(db, experiment_id, source,
                                                         scope_sql(source, condition.scope), sources), form)
    last = f"if(count() = 0, 0, toUnixTimestamp(max({time})))"
    if grace is None:
        value = f"if(count() = 0, {w}, {end} - {last})"
    else:
        run_start, run_end = run_span_sql(db, experiment_id, grace)
        inside = f"({run_start} IS NOT NULL AND {end} >= {run_start} AND ({run_end} IS NULL OR {end} <= {run_end}))"
        value = f"if({inside}, {end} - greatest({last}, {run_start}), NULL)"
    samples = f"sum({AGGREGATES[source].count})" if form == "aggregate" else "count()"
    return (f"SELECT {value} AS value, {samples} AS samples "
            f"FROM {db}.{name} WHERE {where} AND toUnixTimestamp({time}) <= {end}")


def served(condition, *, scope=None, source: str | None = None) -> bool:
    """Whether a per-second aggregate (``AGGREGATES``) holds what the measurement counts: not a
    custom ``count``/``ratio`` (its ``where``/``of`` read any column), and no span scope on a route
    (spans_per_second keeps no span name). ``absence`` counts from the last record's second, which
    the aggregate keeps."""
    kind = getattr(condition, "measurement", None) or getattr(condition, "sli")
    if kind in CUSTOM:
        return False
    source = source or source_of(kind)
    if source != "spans":
        return True
    scopes = [scope if scope is not None else getattr(condition, "scope", None), getattr(condition, "control", None)]
    return not any("SpanName" in scope_sql(source, s) for s in scopes)


def series_sql(db: str, experiment_id: str, condition, *, window: float | None = None, scope=None,
               name: str = "value", sources: str = "auto", extra: str = "1", source: str | None = None,
               form: str = "raw") -> str:
    """The measurement per window for a dashboard panel: one point per ``greatest(window,
    $__interval_s)`` seconds, at the window's first second; a point is the judge's value at the
    window's last second (``time + window - 1``) when the interval is the window.

    ``form="aggregate"``: read from the source's per-second aggregate when it holds what the
    measurement counts (``served``; else the raw rows): whole seconds of the time range (its last
    one whole), the same counts, quantiles as the judge's sketch."""
    kind = getattr(condition, "measurement", None) or getattr(condition, "sli")
    source = source or source_of(kind)
    table = TABLES[source]
    window = float(window if window is not None else _window_seconds_of(condition))
    if form == "aggregate" and (extra != "1" or not served(condition, scope=scope, source=source)):
        form = "raw"
    value, _samples, rows = aggregate_sql(condition, window=window, scope=scope, seconds="b", source=source, form=form)
    where = _base_where(db, experiment_id, source, rows, sources)
    name_, time = table.name, table.time
    if form == "aggregate":
        name_, time = AGGREGATES[source].name, "second"
        where = where.replace(f"FROM {db}.requests WHERE", f"FROM {db}.{name_} WHERE")
    return (f"WITH greatest({_window_seconds(window)}, $__interval_s) AS b "
            f"SELECT toStartOfInterval(toDateTime({time}), toIntervalSecond(b)) AS time, {value} AS {name} "
            f"FROM {db}.{name_} WHERE {_and(where, f'$__timeFilter({time})', extra)} "
            f"GROUP BY time ORDER BY time")


# ---- the streaming evaluation ------------------------------------------------------------------
@dataclass
class Measured:
    value: float | None
    samples: int
    contributors: list[dict] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    detail: str = ""


def evaluate(condition, cells: list, window: float) -> Measured:
    """The condition's measurement over rollup cells already limited to its window."""
    kind = condition.measurement
    source = source_of(kind)
    group = [c for c in cells if c.source == source and matches(c, condition.scope)]
    count = sum(c.count for c in group)
    errors = sum(c.errors for c in group)
    by_route: dict[str, list] = {}
    for c in group:
        by_route.setdefault(c.route or c.service, []).append(c)
    examples = [e for c in group for e in c.examples][:5]
    control = getattr(condition, "control", None)
    if kind in CUSTOM:
        # Custom counts: (rows matching, rows of the base) per cell, counted by the sink.
        name = condition.name
        errors, count = _custom(group, name)  # matching rows play the errors, the base the samples
        examples = [e for c in group for e in (c.custom.get(name) or (0, 0, ()))[2]][:5]
        by_route = {route: cs for route, cs in by_route.items() if _custom(cs, name)[1]}
        if kind == "count" and control is None:
            return Measured(float(errors), sum(c.count for c in group), _top_custom(by_route, name, "count"), examples)
    if control is not None and (kind in RATES or kind == "ratio"):
        base = [c for c in cells if c.source == source and matches(c, control)]
        if kind == "ratio":
            e_b, n_b = _custom(base, condition.name)
        else:
            n_b, e_b = sum(c.count for c in base), sum(c.errors for c in base)
        if count == 0 or n_b == 0:
            return Measured(None, min(count, n_b))
        difference = errors / count - e_b / n_b
        p_value = two_proportion_p_value(errors, count, e_b, n_b)
        confidence = getattr(condition, "confidence", 0.99) or 0.99
        significant = p_value < 1 - confidence
        detail = (f"experiment {errors}/{count} vs control {e_b}/{n_b}, difference {difference:+.4f}, "
                  f"p={p_value:.2g} ({'significant' if significant else 'not significant'} at {confidence * 100:g}%)")
        # Only a significant difference counts; otherwise the rule sees no difference at all.
        top = _top_custom(by_route, condition.name, "ratio") if kind == "ratio" else _top(by_route, "errors")
        return Measured(difference if significant else 0.0, min(count, n_b), top, examples, detail)
    if kind == "ratio":
        return Measured(errors / count if count else None, count, _top_custom(by_route, condition.name, "ratio"),
                        examples)
    if kind in RATES:
        value = errors / count if count else None
        return Measured(value, count, _top(by_route, "errors"), examples)
    if kind == "request_rate":
        return Measured(count / window if window else None, count, _top(by_route, "count"))
    if kind in QUANTILES:
        sketch = QuantileSketch()
        for c in group:
            sketch.merge(c.sketch)
        return Measured(sketch.quantile(QUANTILES[kind]), count, _top(by_route, kind), examples)
    return Measured(None, 0, detail=f"measurement {kind} is not evaluated yet")


def _custom(cells: list, name: str) -> tuple[int, int]:
    """(rows matching, rows of the base) of a custom rule over cells."""
    matching = base = 0
    for c in cells:
        counts = c.custom.get(name)
        if counts:
            matching += counts[0]
            base += counts[1]
    return matching, base


def _top_custom(by_route: dict[str, list], name: str, kind: str) -> list[dict]:
    rows = []
    for route, cells in by_route.items():
        matching, base = _custom(cells, name)
        value = matching if kind == "count" else (round(matching / base, 4) if base else 0.0)
        rows.append({"route": route, "value": value, "matching": matching, "samples": base})
    rows.sort(key=lambda r: (r["matching"], r["samples"]), reverse=True)
    return rows[:3]


def _top(by_route: dict[str, list], kind: str) -> list[dict]:
    rows = []
    for route, cells in by_route.items():
        n = sum(c.count for c in cells)
        if kind == "errors":
            e = sum(c.errors for c in cells)
            rows.append({"route": route, "value": round(e / n, 4) if n else 0.0, "errors": e, "samples": n})
        elif kind == "count":
            rows.append({"route": route, "value": n, "samples": n})
        else:
            sketch = QuantileSketch()
            for c in cells:
                sketch.merge(c.sketch)
            q = sketch.quantile(QUANTILES[kind])
            rows.append({"route": route, "value": round(q, 3) if q is not None else None, "samples": n})
    key = "errors" if kind == "errors" else "value"
    rows.sort(key=lambda r: (r.get(key) or 0, r["samples"]), reverse=True)
    return rows[:3]
