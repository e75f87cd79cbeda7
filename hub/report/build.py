"""Gather everything an after-action report says about one experiment, through read-only SQL.

``build_report(experiment_id, query, database)`` takes a query callable ``query(sql) ->
{"columns": [...], "rows": [[...]]}``: ``hub.cli.data.run_query`` bound to the settings (through
the running hub's HTTP API, or on the store when no hub runs), or ``hub.sql.run_readonly`` on a
store. Every statement is one plain SELECT, so it passes the SQL guard of ``POST /v1/sql``.

Times are selected as epoch seconds (floats) so that the answer is the same whether it came
through JSON over HTTP or straight from the engine.

The saved questions of ``hub.questions`` answer the per-phase numbers, the fault attribution,
the shadow differences and the timeline; the steady-state measurements of the definition are
computed here, per phase, with the same notion of a failed request as the abort judge.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

from hub.abort import measure
from hub.abort.sources import COUNTED_SQL, selection_sql
from hub.errors import UserError
from hub.masking import mask_secrets
from hub.questions import ask, lit
from hub.questions.library import FAILED, SERVED

Query = Callable[[str], dict]

#: A note with this tag, and every surprise, becomes a follow-up item in the report.
FOLLOW_UP_TAG = "follow-up"
_EPOCH = "toUnixTimestamp64Milli({}) / 1000"


def _rows(result: dict) -> list[dict]:
    columns = result.get("columns", [])
    return [dict(zip(columns, row)) for row in result.get("rows", [])]


def _epoch(column: str) -> str:
    return _EPOCH.format(f"toDateTime64({column}, 3, 'UTC')")


@dataclass
class MeasurementResult:
    """One steady-state measurement in one phase: the tolerance, the value, and the verdict."""

    name: str
    sli: str
    source: str
    phase: str
    value: float | None
    samples: int
    min: float | None
    max: float | None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``within``, ``BREACHED`` or ``not measured``."""
        if self.value is None:
            return "not measured"
        if self.max is not None and self.value > self.max:
            return "BREACHED"
        if self.min is not None and self.value < self.min:
            return "BREACHED"
        return "within"

    @property
    def expected(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {format_value(self.sli, self.min)}")
        if self.max is not None:
            parts.append(f"<= {format_value(self.sli, self.max)}")
        return " and ".join(parts)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value)}"
    if abs(value) < 1:
        return f"{value:.4f}".rstrip("0").rstrip(".") or "0"
    return f"{value:.1f}"


def format_value(sli: str, value: float | None) -> str:
    """A measurement value as a person reads it: rates as percentages, latencies in ms."""
    if value is None:
        return "-"
    if sli.endswith("_rate") and sli != "request_rate":
        percent = round(value * 100, 6)
        return f"{percent:.0f}%" if percent.is_integer() else f"{percent:.2f}%"
    if sli.startswith("latency"):
        return f"{value:.0f} ms"
    if sli == "request_rate":
        return f"{value:.1f}/s"
    return _num(value)


@dataclass
class Report:
    experiment_id: str
    database: str
    experiment: dict
    definition: dict
    phases: list[dict]
    per_phase: list[dict]
    measurements: list[MeasurementResult]
    series: list[dict]
    bucket_seconds: float
    faults: list[dict]
    attribution: dict[str, list[dict]]
    alerts: list[dict]
    actions: list[dict]
    timeline: list[dict]
    notes: list[dict]
    shadow: dict
    follow_ups: list[dict] = field(default_factory=list)
    #: alerts the judge raised outside the run (before the start, after the end): recorded, nothing done
    outside_alerts: list[dict] = field(default_factory=list)
    #: the plan's prerequisites with their latest recorded check
    prerequisites: list[dict] = field(default_factory=list)
    #: the kinds of request legs counted (gateway, vegeta, emit) and those stored
    sources_counted: str = ""
    sources_stored: str = ""

    @property
    def abort_rules_fired(self) -> list[str]:
        """Abort-severity rules that fired inside the run."""
        return sorted({a["rule"] for a in self.alerts
                       if a["status"] == "firing" and a["severity"] == "abort" and not a.get("outside_run")})

    @property
    def surprises(self) -> list[dict]:
        return [n for n in self.notes if n["note_kind"] == "surprise"]

    @property
    def breaches(self) -> list[MeasurementResult]:
        return [m for m in self.measurements if m.verdict == "BREACHED"]


# ---- the pieces -------------------------------------------------------------------------------
def _experiment(query: Query, db: str, eid: str) -> tuple[dict, dict]:
    rows = _rows(query(
        f"SELECT experiment_id, title, environment, status, phase, created_by, {_epoch('created_at')} AS created_at, "
        f"if(started_at IS NULL, NULL, {_epoch('assumeNotNull(started_at)')}) AS started_at, "
        f"if(ended_at IS NULL, NULL, {_epoch('assumeNotNull(ended_at)')}) AS ended_at, "
        f"abort_reason, aborted_by, version FROM {db}.experiments WHERE experiment_id = {lit(eid)}"))
    if not rows:
        raise UserError(f"no experiment {eid!r} in the store (`hub experiment list` shows them)")
    defs = _rows(query(
        f"SELECT JSONExtractRaw(payload, 'definition') AS definition FROM {db}.experiment_events "
        f"WHERE experiment_id = {lit(eid)} AND accepted = 1 AND kind = 'experiment_created' ORDER BY sequence LIMIT 1"))
    definition = json.loads(defs[0]["definition"]) if defs and defs[0]["definition"] else {}
    completed = _rows(query(
        f"SELECT JSONExtractString(payload, 'summary') AS summary, actor FROM {db}.experiment_events "
        f"WHERE experiment_id = {lit(eid)} AND accepted = 1 AND kind = 'experiment_completed' ORDER BY sequence LIMIT 1"))
    experiment = rows[0]
    experiment["summary"] = completed[0]["summary"] if completed else ""
    experiment["completed_by"] = completed[0]["actor"] if completed else ""
    started = _rows(query(
        f"SELECT JSONExtractBool(payload, 'forced') AS forced, actor FROM {db}.experiment_events "
        f"WHERE experiment_id = {lit(eid)} AND accepted = 1 AND kind = 'experiment_started' ORDER BY sequence LIMIT 1"))
    experiment["forced_start"] = bool(started and started[0]["forced"])
    experiment["started_by"] = started[0]["actor"] if started else ""
    return experiment, definition


def _phases(query: Query, db: str, eid: str, experiment: dict, last_request: float | None) -> list[dict]:
    rows = _rows(query(
        f"SELECT phase, {_epoch('start')} AS start, if(end IS NULL, NULL, {_epoch('assumeNotNull(end)')}) AS end "
        f"FROM {db}.experiment_phases WHERE experiment_id = {lit(eid)} ORDER BY start"))
    for row in rows:
        if row["end"] is None:  # still running: the phase lasts until now, or its last request
            row["end"] = experiment.get("ended_at") or max(last_request or row["start"], row["start"])
            row["open"] = True
        row["seconds"] = max(float(row["end"]) - float(row["start"]), 0.0)
    return rows


def _occurrence_labels(phases: list[dict]) -> list[str]:
    """A label per phase stretch: its name, with ``(2)``, ``(3)`` ... when the phase recurs."""
    counts: dict[str, int] = {}
    for p in phases:
        counts[p["phase"]] = counts.get(p["phase"], 0) + 1
    seen: dict[str, int] = {}
    labels = []
    for p in phases:
        seen[p["phase"]] = seen.get(p["phase"], 0) + 1
        labels.append(p["phase"] if counts[p["phase"]] == 1 else f"{p['phase']} ({seen[p['phase']]})")
    return labels


def _measure(query: Query, db: str, eid: str, m: dict, phases: list[dict],
             shadow_pairs: bool = False, sources: str = "auto") -> list[MeasurementResult]:
    """The measurement in each occurrence of each phase (its time range), with the meaning the abort
    judge and the dashboards give it (``hub.abort.measure``: the filter matched as a rule's scope,
    ``service`` = gateway or backend of a request leg)."""
    sli, source = m["sli"], m["source"]
    filt = m.get("filter") or {}
    tol = m.get("tolerance") or {}
    table_source = measure.steady_source(m)
    note = ""
    if table_source == "pairs":
        note = "from the stored shadow pairs: status differences, and body differences that are not known noise"
    out = []
    for p, label in zip(phases, _occurrence_labels(phases)):
        value, n = None, 0
        if table_source != "pairs" or shadow_pairs:
            table = measure.TABLES[table_source]
            agg, samples, rows = measure.aggregate_sql(SimpleNamespace(sli=sli), window=max(p["seconds"], 1e-3),
                                                       scope=filt, source=table_source)
            where = measure._base_where(db, eid, table_source, rows, sources)
            t = table.time
            found = _rows(query(
                f"SELECT {agg} AS value, {samples} AS n FROM {db}.{table.name} WHERE {where} "
                f"AND {t} >= toDateTime64({float(p['start'])!r}, 3, 'UTC') "
                f"AND {t} < toDateTime64({float(p['end'])!r}, 3, 'UTC')"))
            if found:
                value, n = found[0]["value"], int(found[0]["n"] or 0)
        if value is not None and (isinstance(value, float) and math.isnan(value)):
            value = None
        why = note
        if value is None and table_source == "pairs" and not shadow_pairs:
            why = "no shadow_pairs table: the shadow pairing agent stored no comparisons"
        elif value is None:
            why = (f"no {'spans' if table_source == 'spans' else 'shadow pairs' if table_source == 'pairs' else 'request legs'}"
                   f" in scope in this phase")
        out.append(MeasurementResult(name=m["name"], sli=sli, source=source, phase=label,
                                     value=None if value is None else float(value), samples=n,
                                     min=tol.get("min"), max=tol.get("max"), note=why))
    return out


def _series(query: Query, db: str, eid: str, phases: list[dict], sources: str = "auto") -> tuple[list[dict], float]:
    served = f"{SERVED} AND {selection_sql(db, eid, sources)}"  # one source of legs: no traffic counted twice
    span = _rows(query(
        f"SELECT count() AS n, {_epoch('min(event_time)')} AS first, {_epoch('max(event_time)')} AS last "
        f"FROM {db}.requests WHERE experiment_id = {lit(eid)} AND {served}"))
    if not span or not span[0]["n"]:
        return [], 1.0
    first = min([float(span[0]["first"])] + [p["start"] for p in phases])
    last = max([float(span[0]["last"])] + [p["end"] for p in phases])
    bucket = max(1, math.ceil((last - first) / 150))  # about 150 points whatever the length
    rows = _rows(query(
        f"SELECT toUnixTimestamp(toStartOfInterval(event_time, INTERVAL {bucket} SECOND)) AS t, count() AS requests, "
        f"countIf({FAILED}) AS errors, quantile(0.5)(latency_ms) AS p50, quantile(0.99)(latency_ms) AS p99 "
        f"FROM {db}.requests WHERE experiment_id = {lit(eid)} AND {served} GROUP BY t ORDER BY t"))
    for r in rows:
        r["t"] = float(r["t"])
    return rows, float(bucket)


def _faults(query: Query, db: str, eid: str) -> list[dict]:
    return _rows(query(
        f"SELECT fault_id, action, target, injector, parameters, {_epoch('start')} AS start, "
        f"if(end IS NULL, NULL, {_epoch('assumeNotNull(end)')}) AS end, injected_by, removed_by "
        f"FROM {db}.experiment_faults WHERE experiment_id = {lit(eid)} ORDER BY start"))


def _alerts(query: Query, db: str, eid: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(alerts inside the run, actions, alerts recorded outside the run), secrets masked."""
    rows = _rows(query(
        f"SELECT {_epoch('time')} AS time, kind, alert_id, status, rule, severity, measurement, comparison, "
        f"threshold, observed, samples, top_contributors, example_request_ids, message, action, url, ok, "
        f"status_code, attempts, error, outside_run, latency_ms FROM {db}.alerts WHERE experiment_id = {lit(eid)} "
        f"ORDER BY time, alert_id"))
    rows = [{k: mask_secrets(v) if k in ("message", "url", "error") else v for k, v in r.items()} for r in rows]
    alerts = [r for r in rows if r["kind"] == "alert"]
    return ([r for r in alerts if not r["outside_run"]], [r for r in rows if r["kind"] != "alert"],
            [r for r in alerts if r["outside_run"]])


def _prerequisites(query: Query, db: str, eid: str, definition: dict) -> list[dict]:
    """Each prerequisite of the plan with its latest recorded check (done or not, note, who, when)."""
    plan = {p["item"]: {"item": p["item"], "owner": p.get("owner") or "", "planned": bool(p.get("done")),
                        "done": None, "note": "", "checked_by": "", "checked_at": None}
            for p in definition.get("prerequisites") or []}
    for row in _rows(query(
            f"SELECT JSONExtractRaw(payload, 'results') AS results, actor, {_epoch('time')} AS time "
            f"FROM {db}.experiment_events WHERE experiment_id = {lit(eid)} AND accepted = 1 "
            f"AND kind = 'prerequisites_checked' ORDER BY sequence")):
        for result in json.loads(row["results"] or "[]"):
            item = plan.get(result.get("item"))
            if item is not None:  # a check covers some items only: the others keep their last result
                item.update(done=bool(result.get("done")), note=result.get("note") or "", checked_by=row["actor"],
                            checked_at=row["time"])
    return list(plan.values())


def phase_at(phases: list[dict], epoch: float) -> str:
    """The phase that was current at ``epoch`` ('' before the first, or after the last ended)."""
    current = ""
    for p in phases:
        if float(p["start"]) <= epoch and (p.get("open") or epoch < float(p["end"])):
            current = p["phase"]
    return current


def _notes(query: Query, db: str, eid: str, phases: list[dict]) -> list[dict]:
    # notes stamped with the same time keep the order of the experiment's log (its sequence), as `hub history`
    rows = _rows(query(
        "SELECT JSONExtractString(payload, 'note_id') AS note_id, JSONExtractString(payload, 'note_kind') AS note_kind, "
        "JSONExtractString(payload, 'text') AS text, JSONExtractString(payload, 'expected') AS expected, "
        "JSONExtractString(payload, 'actual') AS actual, JSONExtract(payload, 'tags', 'Array(String)') AS tags, "
        f"actor, {_epoch('time')} AS time FROM {db}.experiment_events "
        f"WHERE experiment_id = {lit(eid)} AND kind = 'note_added' ORDER BY time, sequence"))
    for r in rows:
        r["phase"] = phase_at(phases, float(r["time"]))
        if isinstance(r["tags"], str):
            r["tags"] = json.loads(r["tags"])
        r["tags"] = list(r["tags"] or [])
    return rows


def _shadow(query: Query, db: str, eid: str) -> dict:
    answer = ask("shadow-differences", {"experiment": eid}, db, query)
    if answer["columns"] == ["message"]:
        return {"available": False, "message": answer["rows"][0][0], "routes": []}
    routes = _rows(answer)
    if not routes:
        return {"available": False, "routes": [],
                "message": "no shadow pairs (primary and shadow responses compared by the pairing agent) were "
                           "stored for it"}
    return {"available": True, "message": "", "routes": routes}


def _follow_ups(notes: list[dict], breaches: list[MeasurementResult]) -> list[dict]:
    items = []
    for n in notes:
        if FOLLOW_UP_TAG in n["tags"] or n["note_kind"] == "surprise":
            why = "tagged follow-up" if FOLLOW_UP_TAG in n["tags"] else "surprise"
            items.append({"text": n["text"], "why": why, "actor": n["actor"], "time": n["time"],
                          "expected": n["expected"], "actual": n["actual"], "tags": n["tags"]})
    names: list[str] = []
    for m in breaches:
        if m.name not in names:
            names.append(m.name)
    for name in names:
        group = [m for m in breaches if m.name == name]
        actual = ", ".join(f"{format_value(m.sli, m.value)} in {m.phase}" for m in group)
        items.append({"text": f"Steady-state measurement {name} ({group[0].sli}) left its tolerance "
                              f"({group[0].expected}): {actual}. Find out why, and whether the system or the "
                              "expectation has to change.",
                      "why": "tolerance breached", "actor": "", "time": None, "expected": group[0].expected,
                      "actual": actual, "tags": []})
    return items


# ---- the whole report -------------------------------------------------------------------------
def build_report(experiment_id: str, query: Query, database: str = "hub",
                 progress: Callable[[str], None] | None = None, sources: str = "auto") -> Report:
    """Everything the report needs, gathered with read-only SQL through ``query``. ``sources``: which
    request legs are counted (``hub.abort.sources``; by default the gateway's when there are any)."""
    say = progress or (lambda _line: None)
    db, eid = database, experiment_id
    say(f"reading experiment {eid}")
    experiment, definition = _experiment(query, db, eid)
    last = _rows(query(f"SELECT {_epoch('max(event_time)')} AS last, count() AS n FROM {db}.requests "
                       f"WHERE experiment_id = {lit(eid)}"))
    last_request = float(last[0]["last"]) if last and last[0]["n"] else None
    phases = _phases(query, db, eid, experiment, last_request)
    say(f"measuring {len(definition.get('steady_state', []))} steady-state measurement(s) over {len(phases)} phase(s)")
    per_phase = _rows(ask("error-rate-by-phase", {"experiment": eid, "source": sources,
                                                   "baseline": phases[0]["phase"] if phases else "baseline"}, db, query))
    recurring = {r["phase"] for r in per_phase if r.get("occurrence", 0) > 1}
    for r in per_phase:  # a phase entered more than once: one row per occurrence, told apart
        if r["phase"] in recurring:
            r["phase"] = f"{r['phase']} ({r['occurrence']})"
    counted = _rows(query(f"SELECT {COUNTED_SQL} AS counted, (SELECT {COUNTED_SQL} FROM {db}.requests "
                          f"WHERE experiment_id = {lit(eid)}) AS stored FROM {db}.requests "
                          f"WHERE experiment_id = {lit(eid)} AND {selection_sql(db, eid, sources)}"))
    shadow = _shadow(query, db, eid)
    measurements: list[MeasurementResult] = []
    for m in definition.get("steady_state", []):
        measurements.extend(_measure(query, db, eid, m, phases, shadow["available"], sources))
    series, bucket = _series(query, db, eid, phases, sources)
    say("attributing faults to routes")
    faults = _faults(query, db, eid)
    attribution: dict[str, list[dict]] = {}
    if faults:
        base = phases[0]["phase"] if phases else "baseline"
        for row in _rows(ask("fault-attribution", {"experiment": eid, "baseline": base, "by": "route",
                                                   "source": sources}, db, query)):
            attribution.setdefault(row["fault_id"], []).append(row)
    say("reading alerts, notes, timeline and shadow comparison")
    alerts, actions, outside = _alerts(query, db, eid)
    timeline = _rows(query(
        f"SELECT {_epoch('time')} AS t, what, detail, actor FROM ({ask_sql('timeline', eid, db)}) ORDER BY t, what"))
    notes = _notes(query, db, eid, phases)
    report = Report(experiment_id=eid, database=db, experiment=experiment, definition=definition, phases=phases,
                    per_phase=per_phase, measurements=measurements, series=series, bucket_seconds=bucket,
                    faults=faults, attribution=attribution, alerts=alerts, actions=actions, timeline=timeline,
                    notes=notes, shadow=shadow)
    report.follow_ups = _follow_ups(notes, report.breaches)
    report.outside_alerts = outside
    report.prerequisites = _prerequisites(query, db, eid, definition)
    if counted:
        report.sources_counted, report.sources_stored = counted[0]["counted"] or "", counted[0]["stored"] or ""
    return report


def ask_sql(name: str, eid: str, db: str) -> str:
    from hub.questions import get

    return get(name).render(db, {"experiment": eid})
