"""Every SQL statement of the generated dashboards, in one place.

The statements are written for the Grafana plugin ``grafana-clickhouse-datasource`` (raw SQL
editor): they use its macros (``$__timeFilter(col)``, ``$__timeInterval(col)``, ``$__interval_s``,
``$__fromTime``, ``$__toTime``, ``$__conditionalAll(cond, $var)``) and Grafana template variables
(``${route:singlequote}``), which ``dashboards.macros`` expands the way the plugin does so that
tests run each statement on the embedded engine. The database is always a parameter (``db``).

Macro arguments never contain parentheses: the plugin's backend reads a macro's arguments up to
the first closing parenthesis.

What counts as a failed request, a shadow mismatch, a scope and each measurement is the abort
judge's definition, compiled to SQL by ``hub.abort.measure``.

Every panel a per-second aggregate of migration 0017 serves reads it: request rate, error rate and
latency quantiles per leg and per route, the route table, the room's error and request rates,
shadow outcomes and top differing routes, span error rate and latency, and the route, leg and
service variables. ``hub.sql.aggregates`` writes those statements (its ``form="aggregate"``) and
the same definition over the raw rows (``form="raw"``); the two return the same rows. The rule
and steady-state panels read the aggregates where they hold the measurement (``absence`` included:
the last second of a leg in scope); annotations and tables read the experiment's own tables.
"""

from __future__ import annotations


from hub.abort import measure
from hub.sql import aggregates as A
from hub.experiments.definition import parse_duration

#: A failed request leg, a failed span, a real shadow mismatch: as the abort judge counts them.
REQUEST_FAILED = measure.REQUEST_FAILED_SQL
SPAN_FAILED = measure.SPAN_FAILED_SQL
SHADOW_MISMATCH = measure.PAIR_MISMATCH_SQL
#: Columns a ``shadow_pairs`` table must have for the shadow comparison panels.
SHADOW_PAIR_COLUMNS = ("event_time", "experiment_id", "route", "outcome", "noise", "gateway", "shadow_backend")

ROUTE_FILTER = "$__conditionalAll(route IN (${route:singlequote}), $route)"
LEG_FILTER = "$__conditionalAll(leg IN (${leg:singlequote}), $leg)"
SERVICE_FILTER = "$__conditionalAll(ServiceName IN (${service:singlequote}), $service)"


def lit(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- template variables ----------------------------------------------------------------------
def variable_routes(db: str, experiment_id: str, planned: list[str]) -> str:
    """Routes of the experiment: the definition's targets, and every route its traffic used (read
    from the per-second aggregate, ``hub.sql.aggregates``)."""
    return A.variable_routes(db, experiment_id, planned)


def variable_legs(db: str, experiment_id: str) -> str:
    return A.variable_legs(db, experiment_id)


def variable_services(db: str, experiment_id: str, planned: list[str]) -> str:
    return A.variable_services(db, experiment_id, planned)


# ---- header ------------------------------------------------------------------------------------
def experiment_status(db: str, experiment_id: str) -> str:
    return (f"SELECT status, phase, environment, started_at, ended_at, abort_reason, aborted_by "
            f"FROM {db}.experiments WHERE experiment_id = {lit(experiment_id)}")


def active_faults(db: str, experiment_id: str) -> str:
    return (f"SELECT start, fault_id, action, target, injector, injected_by, end, removed_by "
            f"FROM {db}.experiment_faults WHERE experiment_id = {lit(experiment_id)} ORDER BY start DESC")


# ---- annotations (time, timeEnd, text, tags) -----------------------------------------------------
def annotation_phases(db: str, experiment_id: str) -> str:
    return (f"SELECT start AS time, ifNull(end, now64(3)) AS timeEnd, concat('Phase: ', phase) AS text, "
            f"['phase', toString(phase)] AS tags FROM {db}.experiment_phases "
            f"WHERE experiment_id = {lit(experiment_id)} AND start <= $__toTime AND ifNull(end, now64(3)) >= $__fromTime "
            f"ORDER BY time")


def annotation_faults(db: str, experiment_id: str) -> str:
    return (f"SELECT start AS time, ifNull(end, now64(3)) AS timeEnd, "
            f"concat('Fault ', fault_id, ': ', action, ' on ', target, ' (by ', injector, ')') AS text, "
            f"['fault', action] AS tags FROM {db}.experiment_faults "
            f"WHERE experiment_id = {lit(experiment_id)} AND start <= $__toTime AND ifNull(end, now64(3)) >= $__fromTime "
            f"ORDER BY time")


def annotation_aborts(db: str, experiment_id: str) -> str:
    return (f"SELECT time, concat('Aborted by ', JSONExtractString(payload, 'by'), ': ', "
            f"JSONExtractString(payload, 'reason')) AS text, ['abort'] AS tags FROM {db}.experiment_events "
            f"WHERE experiment_id = {lit(experiment_id)} AND accepted = 1 AND kind = 'experiment_aborted' "
            f"AND $__timeFilter(time) "
            f"ORDER BY time")


def annotation_notes(db: str, experiment_id: str) -> str:
    return (f"SELECT time, if(note_kind = 'surprise', concat('Surprise: ', text, ' (expected: ', expected, "
            f"'; actual: ', actual, ')'), text) AS text, arrayConcat([note_kind], tags) AS tags "
            f"FROM {db}.experiment_notes WHERE experiment_id = {lit(experiment_id)} AND $__timeFilter(time) ORDER BY time")


def annotation_alerts(db: str, experiment_id: str | None = None) -> str:
    where = f"experiment_id = {lit(experiment_id)} AND " if experiment_id else ""
    return (f"SELECT time, message AS text, ['alert', status, severity, rule] AS tags FROM {db}.alerts "
            f"WHERE {where}kind = 'alert' AND $__timeFilter(time) ORDER BY time")


def annotation_running_phases(db: str) -> str:
    """Phases of every experiment, for the overview."""
    return (f"SELECT start AS time, ifNull(end, now64(3)) AS timeEnd, concat(experiment_id, ': ', phase) AS text, "
            f"['phase', experiment_id, toString(phase)] AS tags FROM {db}.experiment_phases "
            f"WHERE start <= $__toTime AND ifNull(end, now64(3)) >= $__fromTime ORDER BY time")


# ---- traffic per leg and per route -------------------------------------------------------------
def request_rate(db: str, experiment_id: str, by: str, sources: str = "auto") -> str:
    return A.request_rate(db, experiment_id, by, sources)


def error_rate(db: str, experiment_id: str, by: str, sources: str = "auto") -> str:
    return A.error_rate(db, experiment_id, by, sources)


def latency_quantiles(db: str, experiment_id: str, by: str, sources: str = "auto") -> str:
    return A.latency_quantiles(db, experiment_id, by, sources)


def route_summary(db: str, experiment_id: str, sources: str = "auto") -> str:
    return A.route_summary(db, experiment_id, sources)


# ---- rule and steady-state measurements --------------------------------------------------------
# What a rule or steady-state measurement measures is hub.abort.measure's, the same definition the
# abort judge evaluates: ``rule_measurement`` and ``steady_state_measurement`` only place it on a panel.
def rule_measurement(db: str, experiment_id: str, condition, *, sources: str = "auto", form: str = "aggregate") -> str:
    """The rule's measurement per window (``hub.abort.measure.series_sql``), from the per-second
    aggregate when it holds what the rule counts (``form="raw"``: from the raw rows)."""
    if condition.measurement == "absence":
        return _absence_series(db, experiment_id, condition, sources, form)
    return measure.series_sql(db, experiment_id, condition, name=condition.measurement, sources=sources, form=form)


def steady_state_measurement(db: str, experiment_id: str, m, window_s: float = 30.0, *, sources: str = "auto",
                             form: str = "aggregate") -> str:
    """A steady-state measurement per ``window_s`` seconds, its filter matched as a rule's scope."""
    return measure.series_sql(db, experiment_id, m, window=window_s, scope=m.filter, name=m.sli, sources=sources,
                              source=measure.steady_source(m), form=form)


def _absence_series(db: str, experiment_id: str, condition, sources: str, form: str = "aggregate") -> str:
    """Seconds since the last record in scope at the end of each bucket; NULL before the first one.
    Whole seconds of the time range (its last one whole): the last record's second, read from the
    per-second aggregate (``form="raw"``: from the raw rows, the same value) when it keeps the
    scope's columns (``hub.abort.measure.served``)."""
    source = measure.source_of(condition.measurement)
    where = measure._base_where(db, experiment_id, source, measure.scope_sql(source, condition.scope), sources)
    name, t, where = measure._rows_of(db, source, where, form if measure.served(condition) else "raw")
    in_range = "$__timeFilter(second)" if t == "second" else f"{t} >= $__fromTime AND {t} < $__toTime + 1"
    bucket = f"greatest({max(1, int(round(parse_duration(condition.window))))}, $__interval_s)"
    return (f"WITH {bucket} AS b SELECT time, if(seen = 0, NULL, greatest(0, least(toUnixTimestamp(time) + b, "
            f"toUnixTimestamp(now())) - seen)) AS absence_s FROM (SELECT time, max(last) OVER (ORDER BY time "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS seen FROM (SELECT "
            f"toStartOfInterval(toDateTime({t}), toIntervalSecond(b)) AS time, "
            f"toUnixTimestamp(max({t})) AS last FROM {db}.{name} WHERE {where} AND {in_range} "
            f"GROUP BY time ORDER BY time WITH FILL FROM toStartOfInterval($__fromTime, toIntervalSecond(b)) "
            f"TO $__toTime STEP toIntervalSecond(b))) ORDER BY time")


def rule_alerts(db: str, experiment_id: str) -> str:
    return (f"SELECT time, rule, severity, status, measurement, observed, comparison, threshold, samples, message "
            f"FROM {db}.alerts WHERE experiment_id = {lit(experiment_id)} AND kind = 'alert' AND $__timeFilter(time) "
            f"ORDER BY time DESC LIMIT 200")


def alert_actions(db: str, experiment_id: str) -> str:
    return (f"SELECT time, rule, action, ok, status_code, attempts, url, error FROM {db}.alerts "
            f"WHERE experiment_id = {lit(experiment_id)} AND kind = 'action' AND $__timeFilter(time) "
            f"ORDER BY time DESC LIMIT 200")


# ---- shadow comparison (needs the pairing agent's table) ----------------------------------------
def shadow_outcomes(db: str, experiment_id: str) -> str:
    return A.shadow_outcomes(db, experiment_id)


def shadow_top_routes(db: str, experiment_id: str) -> str:
    # pairs whose primary failed say nothing about the shadow: neither differing nor counted (hub.abort.measure)
    return A.shadow_top_routes(db, experiment_id)


def shadow_pairs_columns(db: str) -> str:
    """Not a panel: what the generator asks the store before it draws the shadow panels."""
    return f"SELECT name FROM system.columns WHERE database = {lit(db)} AND table = 'shadow_pairs'"


# ---- spans (OpenTelemetry) ---------------------------------------------------------------------
def span_error_rate(db: str, experiment_id: str) -> str:
    return A.span_error_rate(db, experiment_id)


def span_latency(db: str, experiment_id: str) -> str:
    return A.span_latency(db, experiment_id)


# ---- notes ------------------------------------------------------------------------------------
def notes_table(db: str, experiment_id: str) -> str:
    return (f"SELECT time, note_kind AS kind, text, expected, actual, arrayStringConcat(tags, ', ') AS tags, actor "
            f"FROM {db}.experiment_notes WHERE experiment_id = {lit(experiment_id)} ORDER BY time DESC")


# ---- overview ---------------------------------------------------------------------------------
# The room shows what is running and what ended in the last ``recent_hours`` (HUB_ROOM_RECENT_HOURS):
# an experiment aborted a minute ago keeps its alerts and its abort reason on the screen.
def _in_room(recent_hours: float) -> str:
    seconds = max(0, int(round(recent_hours * 3600)))
    return f"(status = 'running' OR (ended_at IS NOT NULL AND ended_at >= now64(3) - toIntervalSecond({seconds})))"


def _room(db: str, recent_hours: float) -> str:
    return f"(SELECT experiment_id FROM {db}.experiments WHERE {_in_room(recent_hours)})"


def running_experiments(db: str, recent_hours: float = 6.0) -> str:
    """Running experiments, then those that ended in the last hours (with how and why)."""
    return (f"SELECT experiment_id, title, status, environment, phase, started_at, ended_at, "
            f"dateDiff('second', started_at, ifNull(ended_at, now64(3))) AS running_s, abort_reason, aborted_by, "
            f"created_by FROM {db}.experiments WHERE {_in_room(recent_hours)} "
            f"ORDER BY status = 'running' DESC, ifNull(ended_at, started_at) DESC")


def _rules_of_running(db: str, recent_hours: float) -> str:
    return (f"SELECT experiment_id, JSONExtractString(rule, 'name') AS rule, JSONExtractString(rule, 'measurement') AS measurement, "
            f"JSONExtractString(rule, 'comparison') AS comparison, JSONExtractFloat(rule, 'threshold') AS threshold, "
            f"JSONExtractString(rule, 'severity') AS severity "
            f"FROM {db}.experiment_events ARRAY JOIN JSONExtractArrayRaw(payload, 'definition', 'abort_conditions') AS rule "
            f"WHERE accepted = 1 AND kind = 'experiment_created' AND experiment_id IN {_room(db, recent_hours)}")


def rules_state(db: str, recent_hours: float = 6.0) -> str:
    """Every rule of every experiment in the room with its latest alert state (ok when it never fired)."""
    return (f"SELECT r.experiment_id AS experiment_id, r.rule AS rule, r.severity AS severity, "
            f"if(a.rule = '', 'ok', a.state) AS state, a.observed AS observed, r.comparison AS comparison, "
            f"r.threshold AS threshold, r.measurement AS measurement, a.last_change AS last_change "
            f"FROM ({_rules_of_running(db, recent_hours)}) AS r LEFT JOIN (SELECT experiment_id, rule, argMax(status, time) AS state, "
            f"argMax(observed, time) AS observed, max(time) AS last_change FROM {db}.alerts WHERE kind = 'alert' "
            f"GROUP BY experiment_id, rule) AS a ON r.experiment_id = a.experiment_id AND r.rule = a.rule "
            f"ORDER BY state = 'firing' DESC, experiment_id, rule")


def latest_alerts(db: str, recent_hours: float = 6.0) -> str:
    return (f"SELECT time, experiment_id, rule, severity, status, observed, threshold, message FROM {db}.alerts "
            f"WHERE kind = 'alert' AND experiment_id IN {_room(db, recent_hours)} "
            f"ORDER BY time DESC LIMIT 50")


def overview_error_rate(db: str, recent_hours: float = 6.0) -> str:
    return A.overview_error_rate(db, recent_hours)


def overview_request_rate(db: str, recent_hours: float = 6.0) -> str:
    return A.overview_request_rate(db, recent_hours)


def window_seconds(window: str) -> float:
    return parse_duration(window)
