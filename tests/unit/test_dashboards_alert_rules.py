"""Alert rules are made for a named experiment only."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from dashboards.alert_rules import alert_rules
from dashboards.config import grafana_config
from hub.experiments.definition import load_definition
from hub.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "experiments" / "patient-api-db-failover.yaml"


def test_a_definition_without_an_id_needs_the_experiment_id_passed_as_its_dashboard_does():
    cfg = grafana_config(load_settings({}), env={})
    defn = msgspec.structs.replace(load_definition(EXAMPLE), id=None)
    with pytest.raises(ValueError, match="no id"):
        alert_rules(defn, cfg)
    rules, _ = alert_rules(defn, cfg, experiment_id="exp-1")
    assert rules and all(rule["title"].startswith("exp-1: ") for rule in rules)
    assert all(rule["labels"]["experiment"] == "exp-1" for rule in rules)
