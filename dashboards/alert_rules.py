"""An experiment's abort rules as Grafana alert rules (optional: the hub's own judge is the one that
aborts; these let Grafana's alerting notify people who route alerts through Grafana).

Each rule evaluates three queries: A, the rule's measurement over its window on ClickHouse (NULL
below ``min_samples``); B, reduce A to its last value; C, a math expression comparing B with the
threshold. ``for`` is the rule's hold. Rules on ``shadow_mismatch_rate`` need ``shadow_pairs`` and
are left out without it. Output shape: the provisioning API's rule (``POST
/api/v1/provisioning/alert-rules``), which ``alerting.jsonschema.json`` describes; ``file_group``
turns rules into a file-provisioning group.
"""

from __future__ import annotations

import hashlib
import math

from dashboards.config import GrafanaConfig
from dashboards.experiment import dashboard_uid
from dashboards.panels import ClickHouseQuery
from hub.abort import measure
from hub.experiments.definition import AbortCondition, ExperimentDefinition, parse_duration

RULE_GROUP = "gameday-abort-rules"


def rule_uid(experiment_id: str, rule: str) -> str:
    return "gdr-" + hashlib.sha1(f"{experiment_id}/{rule}".encode()).hexdigest()[:20]


def _value_sql(db: str, eid: str, c: AbortCondition, sources: str = "auto", grace: float = 0.0) -> str:
    """The rule's value over the window ending at the evaluation's second, as the judge computes it
    (``hub.abort.measure.window_sql``); NULL below ``min_samples`` and outside the run (before the
    start, after the end plus ``abort_grace``), where the judge's rules act on nothing either. Read
    from the per-second aggregate of the rule's source when it holds what the rule counts."""
    return f"SELECT value FROM ({measure.window_sql(db, eid, c, sources=sources, grace=grace, form='aggregate')})"


def alert_rule(defn: ExperimentDefinition, c: AbortCondition, cfg: GrafanaConfig, experiment_id: str,
               sources: str = "auto") -> dict:
    window = max(1, int(math.ceil(parse_duration(c.window))))
    hold = int(parse_duration(c.for_))
    grace = parse_duration(getattr(defn, "abort_grace", "0s") or "0s")
    query = ClickHouseQuery(_value_sql(cfg.database, experiment_id, c, sources, grace), ref_id="A", datasource=cfg.datasource_ref).to_json()
    query["intervalMs"], query["maxDataPoints"] = 1000, 43200
    return {
        "uid": rule_uid(experiment_id, c.name),
        "orgID": 1,
        "folderUID": cfg.folder_uid,
        "ruleGroup": RULE_GROUP,
        "title": f"{experiment_id}: {c.name}"[:190],
        "condition": "C",
        "data": [
            {"refId": "A", "datasourceUid": cfg.datasource_uid, "queryType": "table",
             "relativeTimeRange": {"from": window, "to": 0}, "model": query},
            {"refId": "B", "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
             "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                       "settings": {"mode": "dropNN"}, "datasource": {"type": "__expr__", "uid": "__expr__"}}},
            {"refId": "C", "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
             "model": {"refId": "C", "type": "math", "expression": f"$B {c.comparison} {c.threshold!r}",
                       "datasource": {"type": "__expr__", "uid": "__expr__"}}},
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": f"{hold}s",
        "annotations": {
            "summary": f"{c.measurement} {c.comparison} {c.threshold:g} over {c.window} ({c.severity})",
            "description": f"Abort rule '{c.name}' of experiment {experiment_id} ({defn.title}).",
            "__dashboardUid__": dashboard_uid(experiment_id),
        },
        "labels": {"experiment": experiment_id, "rule": c.name, "severity": c.severity, "source": "gameday-hub"},
    }


def alert_rules(defn: ExperimentDefinition, cfg: GrafanaConfig, *, experiment_id: str | None = None,
                shadow_pairs: bool = False, sources: str = "auto") -> tuple[list[dict], list[str]]:
    """(rules, names of the abort conditions left out with the reason)."""
    eid = experiment_id or defn.id
    if not eid:
        raise ValueError("the definition has no id: pass experiment_id")
    rules, skipped = [], []
    for c in defn.abort_conditions:
        if c.measurement == "shadow_mismatch_rate" and not shadow_pairs:
            skipped.append(f"{c.name}: shadow_mismatch_rate needs the shadow_pairs table")
            continue
        rules.append(alert_rule(defn, c, cfg, eid, sources))
    return rules, skipped


def file_group(rules: list[dict], cfg: GrafanaConfig, interval_s: int = 10) -> dict:
    """The rules as a file-provisioning document (``provisioning/alerting/*.yaml``)."""
    keep = ("uid", "title", "condition", "data", "noDataState", "execErrState", "for", "annotations", "labels")
    return {"apiVersion": 1, "groups": [{
        "orgId": 1, "name": RULE_GROUP, "folder": cfg.folder, "interval": f"{interval_s}s",
        "rules": [{k: r[k] for k in keep if k in r} for r in rules],
    }]}
