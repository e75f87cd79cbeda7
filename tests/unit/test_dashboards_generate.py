"""Generated dashboards and alert rules: valid against Grafana's JSON schemas, equal to the
committed snapshots (``UPDATE_SNAPSHOTS=1`` rewrites them), and built from the definition."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from dashboards.alert_rules import alert_rules, file_group
from dashboards.config import grafana_config
from dashboards.experiment import dashboard_uid, experiment_dashboard
from dashboards.overview import overview_dashboard
from hub.experiments.definition import load_definition
from hub.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "tests" / "vendor" / "grafana"  # vendored from grafana-foundation-sdk: see its README
SNAPSHOTS = REPO / "tests" / "snapshots" / "dashboards"
EXAMPLE = REPO / "examples" / "experiments" / "patient-api-db-failover.yaml"


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


@pytest.fixture(scope="module")
def cfg():
    return grafana_config(load_settings({}), env={})


@pytest.fixture(scope="module")
def defn():
    return load_definition(EXAMPLE)


def generated(cfg, defn) -> dict[str, object]:
    rules, _ = alert_rules(defn, cfg)
    rules_shadow, _ = alert_rules(defn, cfg, shadow_pairs=True)
    return {
        "experiment.json": experiment_dashboard(defn, cfg),
        "experiment-with-shadow-pairs.json": experiment_dashboard(defn, cfg, shadow_pairs=True),
        "overview.json": overview_dashboard(cfg),
        "alert-rules.json": rules_shadow,
        "alert-rules-without-shadow-pairs.json": rules,
        "alert-rules-provisioning.json": file_group(rules, cfg),
    }


def test_generated_dashboards_validate_against_the_dashboard_schema(cfg, defn):
    validator = jsonschema.Draft7Validator(_schema("dashboard.jsonschema.json"))
    for name, doc in generated(cfg, defn).items():
        if name.startswith("alert"):
            continue
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
        assert not errors, f"{name}: {errors}"


def test_generated_alert_rules_validate_against_the_alerting_schema(cfg, defn):
    schema = _schema("alerting.jsonschema.json")
    rule = jsonschema.Draft7Validator({"$ref": "#/definitions/Rule", "definitions": schema["definitions"]})
    rules, skipped = alert_rules(defn, cfg)
    assert [r["labels"]["rule"] for r in rules] == ["api-failing", "api-very-slow", "api-silent"]
    assert skipped == ["shadow-diverging: shadow_mismatch_rate needs the shadow_pairs table"]
    for r in alert_rules(defn, cfg, shadow_pairs=True)[0]:
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in rule.iter_errors(r)]
        assert not errors, f"{r['title']}: {errors}"
        assert r["condition"] == "C" and r["data"][0]["datasourceUid"] == cfg.datasource_uid


@pytest.mark.parametrize("name", ["experiment.json", "experiment-with-shadow-pairs.json", "overview.json",
                                  "alert-rules.json", "alert-rules-without-shadow-pairs.json",
                                  "alert-rules-provisioning.json"])
def test_generated_json_equals_its_snapshot(cfg, defn, name):
    text = json.dumps(generated(cfg, defn)[name], indent=2, sort_keys=True) + "\n"
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}: run with UPDATE_SNAPSHOTS=1 and review the diff"
    assert text == path.read_text(), f"{name} differs from its snapshot; if intended, UPDATE_SNAPSHOTS=1 and review"


def test_the_dashboard_follows_the_definition(cfg, defn):
    d = experiment_dashboard(defn, cfg)
    assert d["uid"] == "gd-patient-api-db-failover" and d["refresh"] == "5s"
    assert {"gameday-hub", "experiment", "patient-api-db-failover"} <= set(d["tags"])
    assert [v["name"] for v in d["templating"]["list"]] == ["route", "leg", "service"]
    assert all(v["includeAll"] and v["multi"] and isinstance(v["query"], str) for v in d["templating"]["list"])
    titles = [p.get("title", "") for p in d["panels"]]
    for c in defn.abort_conditions:
        assert any(t.startswith(f"Rule {c.name}:") for t in titles), c.name
    for m in defn.steady_state:
        assert any(t.startswith(f"Steady state {m.name}:") for t in titles), m.name
    rule = next(p for p in d["panels"] if p.get("title", "").startswith("Rule api-failing:"))
    steps = rule["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": 0.1}
    assert rule["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line+area"
    throughput = next(p for p in d["panels"] if p.get("title", "").startswith("Steady state api-throughput:"))
    assert throughput["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "red", "value": None}, {"color": "green", "value": 40}]
    names = [a["name"] for a in d["annotations"]["list"]]
    assert names[:5] == ["Phases", "Faults", "Aborts", "Notes", "Alerts"]
    for panel in d["panels"]:
        for t in panel.get("targets", []):
            assert t["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": cfg.datasource_uid}
            assert t["editorType"] == "sql"
            assert (t["format"], t["queryType"]) == ((0, "timeseries") if panel["type"] == "timeseries" else (1, "table"))
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))


def test_database_and_refresh_come_from_settings(defn):
    settings = load_settings({}).with_overrides(database="gamedays")
    cfg = grafana_config(settings, env={"HUB_GRAFANA_REFRESH": "10s", "HUB_GRAFANA_DATASOURCE_UID": "ch-1"})
    d = experiment_dashboard(defn, cfg)
    assert d["refresh"] == "10s"
    sqls = [t["rawSql"] for p in d["panels"] for t in p.get("targets", [])]
    assert sqls and all("gamedays." in s and "hub." not in s for s in sqls)
    assert {t["datasource"]["uid"] for p in d["panels"] for t in p.get("targets", [])} == {"ch-1"}


def test_long_experiment_ids_get_a_short_stable_uid():
    long_id = "a" * 60
    uid = dashboard_uid(long_id)
    assert len(uid) <= 40 and uid == dashboard_uid(long_id) and uid != dashboard_uid("a" * 59 + "b")
    assert dashboard_uid("short-one") == "gd-short-one"
