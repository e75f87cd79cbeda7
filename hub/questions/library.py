"""Saved questions: named, parameterised SQL that answers what people ask after an experiment.

Each question has a name, a one-line description and its parameters (every one takes the
experiment id). Values are written into the SQL as quoted ClickHouse literals (``lit``), or
picked from a fixed list (``choices``), so the text runs through the same read-only interface
as any ad-hoc query (``POST /v1/sql``, ``hub sql``) and passes its guard.

A failed request is counted as the abort judge counts it (``hub.abort.measure``): status >= 500,
status 0 (no response) or an error text. Shadow legs are left out of request counts: they copy
primary traffic and would count it twice. So are legs of another source than the one selected
(``source``, ``hub.abort.sources``): by default the gateway's legs when the experiment has any, so
a Vegeta import of the same traffic is not counted twice; a ``sources`` column says what was counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from hub.abort.measure import PAIR_COUNTED_SQL, PAIR_MISMATCH_SQL, REQUEST_FAILED_SQL
from hub.abort.sources import COUNTED_SQL, SELECTIONS, selection_sql
from hub.errors import UserError

FAILED = REQUEST_FAILED_SQL
SERVED = "leg != 'shadow'"


def lit(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    default: str | None = None  # None: required
    choices: tuple[str, ...] = ()
    kind: str = "string"  # string | int

    def render(self, raw: str | None) -> str:
        value = self.default if raw is None else str(raw)
        if value is None or (self.kind == "string" and not value.strip() and not self.choices):
            raise UserError(f"--{self.name.replace('_', '-')} is required")
        if self.choices:
            if value not in self.choices:
                raise UserError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
            return value  # an identifier from a fixed list
        if self.kind == "int":
            try:
                number = int(value)
            except ValueError:
                raise UserError(f"{self.name} must be a whole number, not {value!r}") from None
            if number < 0:
                raise UserError(f"{self.name} must not be negative")
            return str(number)
        if len(value) > 500:
            raise UserError(f"{self.name} is longer than 500 characters")
        return lit(value)


EXPERIMENT = Parameter("experiment", "the experiment id")
BASELINE = Parameter("baseline", "the phase the others are compared with (its first occurrence)", default="baseline")
SOURCE = Parameter("source", "which legs to count: auto (the gateway's when there are any, else all), all, "
                   "gateway, vegeta or emit", default="auto", choices=SELECTIONS)


@dataclass(frozen=True)
class Question:
    name: str
    description: str
    template: str
    parameters: tuple[Parameter, ...] = (EXPERIMENT,)
    requires_table: str = ""  # asked only when this table exists in the hub's database
    missing_message: str = ""

    def render(self, database: str, params: Mapping[str, str | None] | None = None) -> str:
        params = dict(params or {})
        unknown = set(params) - {p.name for p in self.parameters}
        if unknown:
            raise UserError(f"question {self.name} takes no parameter {', '.join(sorted(unknown))} "
                            f"(it takes {', '.join(p.name for p in self.parameters)})")
        values = {p.name: p.render(params.get(p.name)) for p in self.parameters}
        served = SERVED
        if "source" in values:
            served = f"{SERVED} AND {selection_sql(database, '', values['source'], experiment_sql=values['experiment'])}"
        return self.template.format(db=database, failed=FAILED, served=served, counted=COUNTED_SQL,
                                    mismatch=PAIR_MISMATCH_SQL, compared=PAIR_COUNTED_SQL, **values).strip()


ERROR_RATE_BY_PHASE = Question(
    "error-rate-by-phase",
    "Requests, errors, error rate and p50/p95/p99 latency per occurrence of each phase, in time order, with the "
    "change against the baseline phase; traffic before the start and after the end in rows of their own.",
    """
SELECT
    phase, occurrence, requests, errors, round(error_rate, 4) AS error_rate,
    round(p50_ms, 1) AS p50_ms, round(p95_ms, 1) AS p95_ms, round(p99_ms, 1) AS p99_ms,
    phase = {baseline} AND occurrence = 1 AS is_baseline,
    if(has_baseline, round(error_rate - base_error_rate, 4), NULL) AS error_rate_change,
    if(has_baseline, round(p95_ms - base_p95_ms, 1), NULL) AS p95_change_ms,
    if(has_baseline AND base_p99_ms > 0, round(p99_ms / base_p99_ms, 2), NULL) AS p99_ratio,
    phase_start, first_request, last_request, sources
FROM
(
    SELECT
        *,
        countIf(phase = {baseline} AND occurrence = 1) OVER () > 0 AS has_baseline,
        anyIf(error_rate, phase = {baseline} AND occurrence = 1) OVER () AS base_error_rate,
        anyIf(p95_ms, phase = {baseline} AND occurrence = 1) OVER () AS base_p95_ms,
        anyIf(p99_ms, phase = {baseline} AND occurrence = 1) OVER () AS base_p99_ms
    FROM
    (
        SELECT
            label AS phase,
            occurrence,
            count() AS requests,
            countIf({failed}) AS errors,
            errors / requests AS error_rate,
            quantile(0.5)(latency_ms) AS p50_ms,
            quantile(0.95)(latency_ms) AS p95_ms,
            quantile(0.99)(latency_ms) AS p99_ms,
            if(occurrence = 0, NULL, min(stretch_start)) AS phase_start,
            min(event_time) AS first_request,
            max(event_time) AS last_request,
            {counted} AS sources
        FROM
        (
            SELECT
                r.event_time AS event_time, r.status AS status, r.error AS error, r.latency_ms AS latency_ms,
                r.source AS source, s.start AS stretch_start,
                multiIf(run.started IS NULL OR r.event_time < run.started, '(before start)',
                        run.ended IS NOT NULL AND r.event_time >= run.ended, '(after end)',
                        s.phase = '', '(no phase)', s.phase) AS label,
                if(label IN ('(before start)', '(after end)', '(no phase)'), 0, s.occurrence) AS occurrence
            FROM
            (
                SELECT experiment_id, event_time, status, error, latency_ms, source
                FROM {db}.requests
                WHERE experiment_id = {experiment} AND {served}
            ) AS r
            ASOF LEFT JOIN
            (
                SELECT experiment_id, toString(phase) AS phase, start,
                       row_number() OVER (PARTITION BY phase ORDER BY start) AS occurrence
                FROM {db}.experiment_phases
                WHERE experiment_id = {experiment}
            ) AS s ON r.experiment_id = s.experiment_id AND r.event_time >= s.start
            LEFT JOIN
            (
                SELECT experiment_id, started_at AS started, ended_at AS ended
                FROM {db}.experiments
                WHERE experiment_id = {experiment}
            ) AS run ON r.experiment_id = run.experiment_id
        )
        GROUP BY phase, occurrence
    )
)
ORDER BY ifNull(phase_start, first_request), occurrence
""",
    (EXPERIMENT, BASELINE, SOURCE),
)

FAULT_ATTRIBUTION = Question(
    "fault-attribution",
    "For each fault, the routes (or backends, gateways) whose error rate or p95 latency got worse against "
    "the baseline phase while it was active (direction regression), ranked by effect size, largest first; "
    "those that got better are listed apart after them (direction improvement, ranked on their own).",
    """
WITH
    baseline AS
    (
        SELECT toString({by}) AS unit, count() AS n, countIf({failed}) AS failed, quantile(0.95)(latency_ms) AS p95
        FROM {db}.requests
        WHERE experiment_id = {experiment} AND phase = {baseline} AND {served}
        GROUP BY unit
    ),
    faults AS
    (
        SELECT fault_id, action, target, start, ifNull(end, now64(3)) AS stop
        FROM {db}.experiment_faults
        WHERE experiment_id = {experiment}
    ),
    during AS
    (
        SELECT f.fault_id AS fault_id, any(f.action) AS action, any(f.target) AS target, toString(r.{by}) AS unit,
               count() AS n, countIf({failed}) AS failed, quantile(0.95)(r.latency_ms) AS p95
        FROM {db}.requests AS r
        CROSS JOIN faults AS f
        WHERE r.experiment_id = {experiment} AND r.{served} AND r.event_time >= f.start AND r.event_time < f.stop
        GROUP BY fault_id, unit
    )
SELECT
    fault_id, action, target, unit AS {by}, direction,
    row_number() OVER (PARTITION BY fault_id, direction ORDER BY effect_size DESC NULLS LAST, fault_requests DESC)
        AS rank,
    baseline_requests, fault_requests,
    round(baseline_error_rate, 4) AS baseline_error_rate, round(fault_error_rate, 4) AS fault_error_rate,
    round(cohens_h, 3) AS cohens_h,
    round(baseline_p95_ms, 1) AS baseline_p95_ms, round(fault_p95_ms, 1) AS fault_p95_ms,
    round(p95_log_ratio, 3) AS p95_log_ratio,
    round(effect_size, 3) AS effect_size
FROM
(
    SELECT
        d.fault_id AS fault_id, d.action AS action, d.target AS target, d.unit AS unit,
        b.n AS baseline_requests, d.n AS fault_requests,
        if(b.n = 0, NULL, b.failed / b.n) AS baseline_error_rate,
        d.failed / d.n AS fault_error_rate,
        2 * asin(sqrt(fault_error_rate)) - 2 * asin(sqrt(baseline_error_rate)) AS cohens_h,
        if(b.n = 0, NULL, b.p95) AS baseline_p95_ms,
        d.p95 AS fault_p95_ms,
        log(greatest(fault_p95_ms, 0.001) / greatest(baseline_p95_ms, 0.001)) AS p95_log_ratio,
        -- harm: more errors or a higher p95 (positive cohens_h or log ratio); gain: fewer or faster
        greatest(cohens_h, p95_log_ratio, 0) AS harm,
        greatest(-cohens_h, -p95_log_ratio, 0) AS gain,
        b.n >= {min_requests} AND d.n >= {min_requests} AS enough,
        multiIf(NOT enough, 'too few requests', harm > 0, 'regression', gain > 0, 'improvement', 'unchanged')
            AS direction,
        if(NOT enough, NULL, if(harm > 0, harm, gain)) AS effect_size
    FROM during AS d
    LEFT JOIN baseline AS b ON b.unit = d.unit
)
ORDER BY fault_id, indexOf(['regression', 'unchanged', 'too few requests', 'improvement'], direction), rank
""",
    (EXPERIMENT, BASELINE,
     Parameter("by", "what to compare: route, backend or gateway", default="route",
               choices=("route", "backend", "gateway")),
     Parameter("min_requests", "fewest requests on each side for an effect size", default="10", kind="int"),
     SOURCE),
)

SHADOW_DIFFERENCES = Question(
    "shadow-differences",
    "Where shadow responses differed from primary ones, by route: a different status, or body fields that are "
    "not noise, as the judge counts a mismatch, over the pairs whose primary answered; primary_failed: pairs whose "
    "primary failed (no answer, 5xx), which say nothing about the shadow (needs the shadow_pairs table).",
    """
SELECT route, countIf({compared}) AS pairs, countIf({mismatch}) AS differing,
       if(pairs = 0, NULL, round(differing / pairs, 4)) AS mismatch_rate,
       countIf(outcome = 'primary_failed') AS primary_failed,
       countIf(outcome = 'body_mismatch' AND noise) AS noise_only,
       countIf(outcome = 'latency_regression') AS latency_regressions,
       arraySort(groupUniqArray(10)(toString(outcome))) AS outcomes
FROM {db}.shadow_pairs
WHERE experiment_id = {experiment}
GROUP BY route
ORDER BY differing DESC, pairs DESC
""",
    requires_table="shadow_pairs",
    missing_message="no shadow comparisons: the hub's database has no shadow_pairs table "
                    "(the shadow pairing agent has not stored any)",
)

ALERTS = Question(
    "alerts",
    "What the abort judge saw: alerts firing and resolved, and every action taken on them.",
    """
SELECT time, kind, status, rule, severity, measurement, comparison, threshold, observed, samples,
       window_start, window_end, message, action, ok, status_code, error
FROM {db}.alerts
WHERE experiment_id = {experiment}
ORDER BY time, alert_id, kind
""",
)

AUDIT = Question(
    "audit",
    "Who did what when: every event of the experiment's timeline, in order (events the lifecycle refused, "
    "forged ones among them, are in experiment_refused_events).",
    """
SELECT sequence, time, actor, kind, phase, payload
FROM {db}.experiment_events
WHERE experiment_id = {experiment} AND accepted = 1
ORDER BY sequence
""",
)

TIMELINE = Question(
    "timeline",
    "Phases, faults and notes in time order.",
    """
SELECT time, what, detail, actor
FROM
(
    SELECT time, replaceOne(toString(kind), 'experiment_', 'experiment ') AS what,
           JSONExtractString(payload, 'reason') AS detail, actor
    FROM {db}.experiment_events
    WHERE experiment_id = {experiment} AND accepted = 1
      AND kind IN ('experiment_started', 'experiment_aborted', 'experiment_completed')
    UNION ALL
    SELECT time, 'phase' AS what, toString(phase) AS detail, actor
    FROM {db}.experiment_events
    WHERE experiment_id = {experiment} AND accepted = 1 AND kind = 'phase_changed'
    UNION ALL
    SELECT start AS time, 'fault injected' AS what,
           concat(fault_id, ': ', action, ' on ', target, if(parameters IN ('', '{{}}', 'null'), '', concat(' ', parameters)))
               AS detail, injected_by AS actor
    FROM {db}.experiment_faults
    WHERE experiment_id = {experiment}
    UNION ALL
    SELECT assumeNotNull(end) AS time, 'fault removed' AS what, fault_id AS detail, removed_by AS actor
    FROM {db}.experiment_faults
    WHERE experiment_id = {experiment} AND end IS NOT NULL
    UNION ALL
    SELECT time, concat('note: ', note_kind) AS what,
           if(note_kind = 'surprise', concat(text, ' (expected: ', expected, '; actual: ', actual, ')'), text) AS detail,
           actor
    FROM {db}.experiment_notes
    WHERE experiment_id = {experiment}
)
ORDER BY time, what
""",
)

QUESTIONS: dict[str, Question] = {q.name: q for q in (
    ERROR_RATE_BY_PHASE, FAULT_ATTRIBUTION, SHADOW_DIFFERENCES, ALERTS, AUDIT, TIMELINE)}


def get(name: str) -> Question:
    try:
        return QUESTIONS[name]
    except KeyError:
        raise UserError(f"no question called {name!r}; `hub questions list` shows them: "
                        + ", ".join(QUESTIONS)) from None


def message_result(text: str) -> dict:
    return {"columns": ["message"], "rows": [[text]], "row_count": 1, "truncated": False}


def ask(name: str, params: Mapping[str, str | None], database: str, run: Callable[[str], dict]) -> dict:
    """Answer question ``name``: ``run(sql) -> {"columns", "rows", ...}`` runs read-only SQL
    (``hub.cli.data.run_query`` bound to the settings, or ``hub.sql.run_readonly`` on a store)."""
    question = get(name)
    sql = question.render(database, params)
    if question.requires_table:
        found = run(f"SELECT count() FROM system.tables WHERE database = {lit(database)} "
                    f"AND name = {lit(question.requires_table)}")
        if not found["rows"] or not found["rows"][0][0]:
            return message_result(question.missing_message)
    return run(sql)
