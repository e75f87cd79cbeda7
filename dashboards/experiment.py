"""One dashboard per experiment, generated from its definition.

Rows, top to bottom: the plan and the state (status, phase, active faults); traffic per leg
(request rate, error rate, latency quantiles); traffic per route; one panel per abort rule and per
steady-state measurement with its threshold or tolerance drawn; alerts; shadow comparison; spans per
service (OpenTelemetry); notes and surprises. The timeline (phases as shaded regions, faults,
aborts, notes, alerts) is drawn on every time series as annotations read from ClickHouse.
Template variables: route, leg and service.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import queries as Q
from dashboards.config import GrafanaConfig
from dashboards.panels import (ch_annotation, grafana_tags_annotation, query_variable, table_panel, text_panel,
                               ts_panel)
from hub.experiments.definition import ExperimentDefinition

TAGS = ["gameday-hub"]
_UNITS = {"error_rate": "percentunit", "span_error_rate": "percentunit", "shadow_mismatch_rate": "percentunit",
          "request_rate": "reqps", "absence": "s", "latency_p50": "ms", "latency_p90": "ms", "latency_p95": "ms",
          "latency_p99": "ms", "count": "short", "ratio": "percentunit"}


def dashboard_uid(experiment_id: str) -> str:
    """A Grafana uid (at most 40 characters) for an experiment's dashboard; stable across runs."""
    uid = f"gd-{experiment_id}"
    if len(uid) <= 40:
        return uid
    digest = hashlib.sha1(experiment_id.encode()).hexdigest()[:8]
    return f"gd-{experiment_id[:28].rstrip('-')}-{digest}"


_TIMEPICKER_KEYS = {"hidden", "refresh_intervals", "nowDelay", "quick_ranges"}


def to_json(builder_or_model: Any) -> dict:
    """The dashboard (builder or built model) as plain JSON data, in today's dashboard model.

    This SDK release still writes a few fields of the older model that the dashboard schema (and
    current Grafana) no longer has: ``style``, the timepicker's ``collapse``/``enable``/
    ``time_options``, ``options: null`` on panels without options and ids on variables. They are
    dropped here, and panels are numbered (Grafana needs an id per panel for links and alerts).
    """
    model = builder_or_model.build() if hasattr(builder_or_model, "build") else builder_or_model
    data = json.loads(json.dumps(model, cls=JSONEncoder, sort_keys=True))
    data.pop("style", None)
    if isinstance(data.get("timepicker"), dict):
        data["timepicker"] = {k: v for k, v in data["timepicker"].items() if k in _TIMEPICKER_KEYS}
    for var in data.get("templating", {}).get("list", []):
        var.pop("id", None)
    next_id = 1
    for panel in data.get("panels", []):
        for p in [panel] + panel.get("panels", []):
            if p.get("options", {}) is None:
                p.pop("options")
            p["id"] = next_id
            next_id += 1
    return data


def _markdown(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", " ".join(str(text).split()))


def _plan(defn: ExperimentDefinition, experiment_id: str) -> str:
    env = defn.environment
    lines = [
        f"**{_markdown(defn.title)}** (`{experiment_id}`): {env.kind} environment {_markdown(env.name)}, risk {env.risk}"
        + (f", approver {_markdown(env.approver)}" if env.approver else ""),
        "",
        f"**Hypothesis.** {_markdown(defn.hypothesis)}",
        "",
        f"**Expected.** {_markdown(defn.expected_outcome)}",
        "",
        "**Phases.** " + ", ".join(f"{p.name} ({p.planned_minutes:g} min)" for p in defn.phases),
    ]
    if defn.abort_conditions:
        lines += ["", "**Abort rules.** " + "; ".join(
            f"{_markdown(c.name)}: {c.measurement} {_markdown(c.comparison)} {c.threshold:g} over {c.window}"
            f"{' for ' + c.for_ if c.for_ not in ('0s', '0') else ''} ({c.severity})" for c in defn.abort_conditions)]
    return "\n".join(lines)


def _scope_dict(scope) -> dict:
    if scope is None:
        return {}
    return {k: v for k, v in (("leg", scope.leg), ("route", scope.route), ("service", scope.service),
                              ("target", getattr(scope, "target", None)), ("gateway", getattr(scope, "gateway", None)),
                              ("backend", getattr(scope, "backend", None))) if v}


def _scope_words(scope: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in scope.items()) or "the whole experiment"


def _rule_thresholds(comparison: str, threshold: float) -> list[tuple[float | None, str]]:
    if comparison in (">", ">="):
        return [(None, "green"), (threshold, "red")]
    return [(None, "red"), (threshold, "green")]


def _tolerance_thresholds(tmin: float | None, tmax: float | None) -> list[tuple[float | None, str]]:
    if tmin is not None and tmax is not None:
        return [(None, "red"), (tmin, "green"), (tmax, "red")]
    if tmax is not None:
        return [(None, "green"), (tmax, "red")]
    return [(None, "red"), (tmin, "green")]


def _shadow_note() -> str:
    return ("Shadow comparison needs the pairing agent: it pairs each shadow leg with its primary leg "
            "(same correlation id) into the table `shadow_pairs` "
            f"(columns {', '.join('`' + c + '`' for c in Q.SHADOW_PAIR_COLUMNS)}). "
            "That table is not in the store yet; regenerate this dashboard once it is "
            "(`hub dashboards export` or `hub dashboards push`).")


def shadow_pairs_available(store, database: str) -> bool:
    """True when the store has a ``shadow_pairs`` table with the columns the shadow panels read."""
    rows = store.query(Q.shadow_pairs_columns(database)).result_rows
    return set(Q.SHADOW_PAIR_COLUMNS) <= {r[0] for r in rows}


def build_experiment_dashboard(defn: ExperimentDefinition, cfg: GrafanaConfig, *, experiment_id: str | None = None,
                               shadow_pairs: bool = False, sources: str = "auto") -> db_builder.Dashboard:
    """The dashboard builder for one experiment; ``shadow_pairs`` says whether the store has that table;
    ``sources``: which request legs the rule and steady-state panels count (``hub.abort.sources``)."""
    eid = experiment_id or defn.id
    if not eid:
        raise ValueError("the definition has no id: pass experiment_id")
    db, ds = cfg.database, cfg.datasource_ref
    t = defn.targets

    d = (db_builder.Dashboard(f"Gameday: {defn.title}").uid(dashboard_uid(eid))
         .description(f"Experiment {eid}, generated from its definition by gameday-hub.")
         .tags(TAGS + ["experiment", eid] + list(defn.tags)).refresh(cfg.refresh).time("now-30m", "now")
         .timezone("utc").editable().tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .timepicker(db_builder.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m"]))
         .link(db_builder.DashboardLink("Gameday room").type(dm.DashboardLinkType.DASHBOARDS)
               .tags(["gameday-hub", "overview"]).as_dropdown(False).include_vars(False).keep_time(True)
               .target_blank(False).icon("dashboard").tooltip("").url("")))

    # Template variables.
    d = d.with_variable(query_variable("route", "Route", ds, Q.variable_routes(db, eid, list(t.routes))))
    d = d.with_variable(query_variable("leg", "Leg", ds, Q.variable_legs(db, eid)))
    d = d.with_variable(query_variable("service", "Service", ds, Q.variable_services(db, eid, list(t.services))))

    # The timeline, on every time series.
    d = d.annotation(ch_annotation("Phases", ds, Q.annotation_phases(db, eid), "rgba(31, 120, 193, 0.25)"))
    d = d.annotation(ch_annotation("Faults", ds, Q.annotation_faults(db, eid), "rgba(255, 120, 10, 0.35)"))
    d = d.annotation(ch_annotation("Aborts", ds, Q.annotation_aborts(db, eid), "red"))
    d = d.annotation(ch_annotation("Notes", ds, Q.annotation_notes(db, eid), "purple"))
    d = d.annotation(ch_annotation("Alerts", ds, Q.annotation_alerts(db, eid), "yellow"))
    # What the hub posted live to Grafana (GrafanaAnnotator): the same timeline, off by default.
    d = d.annotation(grafana_tags_annotation("Live timeline (posted by the hub)", ["gameday-hub", eid], "orange",
                                             enable=False))

    # The plan and the state.
    d = d.with_row(db_builder.Row("Plan and state"))
    d = d.with_panel(text_panel("Plan", _plan(defn, eid), height=7, span=12))
    d = d.with_panel(table_panel("State", ds, Q.experiment_status(db, eid), height=3, span=12))
    d = d.with_panel(table_panel("Faults", ds, Q.active_faults(db, eid), height=4, span=12,
                                 description="Every fault of the experiment; end is empty while it is active."))

    # Traffic per leg and per route.
    d = d.with_row(db_builder.Row("Traffic per leg (primary, shadow, canary)"))
    d = d.with_panel(ts_panel("Request rate per leg", ds, Q.request_rate(db, eid, "leg", sources), unit="reqps", span=8))
    d = d.with_panel(ts_panel("Error rate per leg", ds, Q.error_rate(db, eid, "leg", sources), unit="percentunit", span=8,
                              description="Failed legs (no response, status >= 500 or an error) over all legs."))
    d = d.with_panel(ts_panel("Latency quantiles per leg", ds, Q.latency_quantiles(db, eid, "leg", sources), unit="ms", span=8))
    d = d.with_row(db_builder.Row("Traffic per route"))
    d = d.with_panel(ts_panel("Request rate per route", ds, Q.request_rate(db, eid, "route", sources), unit="reqps", span=8))
    d = d.with_panel(ts_panel("Error rate per route", ds, Q.error_rate(db, eid, "route", sources), unit="percentunit", span=8))
    d = d.with_panel(ts_panel("Latency quantiles per route", ds, Q.latency_quantiles(db, eid, "route", sources), unit="ms", span=8))
    d = d.with_panel(table_panel("Routes and legs", ds, Q.route_summary(db, eid, sources), span=24, height=6))

    # Abort rules and steady state.
    if defn.abort_conditions:
        d = d.with_row(db_builder.Row("Abort rules"))
        for c in defn.abort_conditions:
            scope = _scope_dict(c.scope)
            title = f"Rule {c.name}: {c.measurement} {c.comparison} {c.threshold:g} ({c.severity})"
            if c.measurement == "shadow_mismatch_rate" and not shadow_pairs:
                d = d.with_panel(text_panel(title, _shadow_note(), height=8, span=12))
                continue
            d = d.with_panel(ts_panel(
                title, ds, Q.rule_measurement(db, eid, c, sources=sources),
                unit=_UNITS[c.measurement], thresholds=_rule_thresholds(c.comparison, c.threshold),
                description=(f"{c.measurement} over {c.window} windows in scope {_scope_words(scope)}, as the "
                             f"abort judge measures it (each point: the window starting there); "
                             f"the rule fires when it is {c.comparison} {c.threshold:g} for {c.for_} "
                             f"with at least {c.min_samples} samples."),
                soft_max=c.threshold * 1.2 if c.comparison in (">", ">=") and c.threshold > 0 else None))
    d = d.with_row(db_builder.Row("Steady state"))
    for m in defn.steady_state:
        scope = _scope_dict(m.filter)
        tol = m.tolerance
        bounds = " and ".join(b for b in ((f">= {tol.min:g}" if tol.min is not None else ""),
                                         (f"<= {tol.max:g}" if tol.max is not None else "")) if b)
        title = f"Steady state {m.name}: {m.sli} {bounds}"
        if m.sli == "shadow_mismatch_rate" and not shadow_pairs:
            d = d.with_panel(text_panel(title, _shadow_note(), height=8, span=12))
            continue
        d = d.with_panel(ts_panel(title, ds, Q.steady_state_measurement(db, eid, m, 30.0, sources=sources), unit=_UNITS[m.sli],
                                  thresholds=_tolerance_thresholds(tol.min, tol.max),
                                  description=f"{m.sli} from {m.source} in scope {_scope_words(scope)}; "
                                              f"the band is the tolerance of the definition."))

    # Alerts.
    d = d.with_row(db_builder.Row("Alerts"))
    d = d.with_panel(table_panel("Alerts of the abort judge", ds, Q.rule_alerts(db, eid), span=14))
    d = d.with_panel(table_panel("Actions taken on alerts", ds, Q.alert_actions(db, eid), span=10))

    # Shadow comparison.
    d = d.with_row(db_builder.Row("Shadow comparison"))
    if shadow_pairs:
        d = d.with_panel(ts_panel("Shadow outcomes over time", ds, Q.shadow_outcomes(db, eid), unit="short", span=14))
        d = d.with_panel(table_panel("Top differing routes", ds, Q.shadow_top_routes(db, eid), span=10))
    else:
        d = d.with_panel(text_panel("Shadow comparison", _shadow_note(), height=4, span=24))

    # Spans.
    d = d.with_row(db_builder.Row("Services (OpenTelemetry spans)"))
    d = d.with_panel(ts_panel("Span error rate per service", ds, Q.span_error_rate(db, eid), unit="percentunit"))
    d = d.with_panel(ts_panel("Span latency per service", ds, Q.span_latency(db, eid), unit="ms"))

    # Notes.
    d = d.with_row(db_builder.Row("Notes and surprises"))
    d = d.with_panel(table_panel("Notes and surprises", ds, Q.notes_table(db, eid), span=24, height=8))
    return d


def experiment_dashboard(defn: ExperimentDefinition, cfg: GrafanaConfig, *, experiment_id: str | None = None,
                         shadow_pairs: bool = False, sources: str = "auto") -> dict:
    """The dashboard JSON for one experiment."""
    return to_json(build_experiment_dashboard(defn, cfg, experiment_id=experiment_id, shadow_pairs=shadow_pairs,
                                              sources=sources))
