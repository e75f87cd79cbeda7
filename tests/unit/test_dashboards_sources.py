"""The dashboards and alert rules count the request legs of the selected source: by default the
gateway's when the experiment has any (so a Vegeta import of the same traffic is not counted twice),
or the one asked for with ``hub dashboards export --source``."""

from __future__ import annotations

from pathlib import Path

from dashboards.alert_rules import alert_rules
from dashboards.config import grafana_config
from dashboards.experiment import experiment_dashboard
from hub.cli.main import main
from hub.experiments.definition import load_definition
from hub.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "experiments" / "patient-api-db-failover.yaml"


def rule_sql(dashboard: dict) -> list[str]:
    return [p["targets"][0]["rawSql"] for p in dashboard["panels"]
            if p.get("title", "").startswith("Rule ") and p.get("targets")
            and "FROM hub.requests" in p["targets"][0].get("rawSql", "")]


def test_panels_and_alert_rules_count_one_source(tmp_path):
    defn = load_definition(EXAMPLE)
    cfg = grafana_config(load_settings({"HUB_HOME": str(tmp_path)}), env={})
    default = rule_sql(experiment_dashboard(defn, cfg))
    assert default and all("startsWith(source, '/hub-gateway/')" in sql for sql in default)
    vegeta = rule_sql(experiment_dashboard(defn, cfg, sources="vegeta"))
    assert all("IN ('vegeta')" in sql for sql in vegeta)
    assert all("source" not in sql for sql in rule_sql(experiment_dashboard(defn, cfg, sources="all")))
    traffic = [p["targets"][0]["rawSql"] for p in experiment_dashboard(defn, cfg)["panels"]
               if p.get("title") in ("Request rate per leg", "Error rate per route", "Routes and legs")]
    assert len(traffic) == 3 and all("startsWith(source, '/hub-gateway/')" in sql for sql in traffic)
    rules, _ = alert_rules(defn, cfg, sources="vegeta")
    requests = [r["data"][0]["model"]["rawSql"] for r in rules if "hub.requests" in r["data"][0]["model"]["rawSql"]]
    assert requests and all("IN ('vegeta')" in sql for sql in requests)


def test_the_export_command_takes_a_source(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    assert main(["dashboards", "export", str(out), "--definition", str(EXAMPLE), "--shadow-pairs", "no",
                 "--source", "vegeta"]) == 0
    text = "".join(p.read_text() for p in (out / "dashboards").glob("*.json"))
    assert "IN ('vegeta')" in text
