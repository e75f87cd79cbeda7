"""The example gateway configs and experiments fit together: used as documented, the gateway's legs
are placed on the experiment (its ``experiment_id`` is the experiment's id, its name one of the
experiment's gateways) and every abort rule's scope names a gateway, backend or route the gateway
really has, so the rules see the legs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.experiments.definition import load_definition
from hub.gateway.config import load_config

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [("examples/gateway.yaml", "examples/experiments/patient-api-db-failover.yaml"),
         ("examples/gameday/gateway.yaml", "examples/gameday/experiment.yaml")]


@pytest.mark.parametrize("gateway_file, experiment_file", PAIRS)
def test_the_gateway_places_its_legs_on_the_experiment_and_the_rules_see_them(gateway_file, experiment_file):
    config = load_config(ROOT / gateway_file)
    definition = load_definition(ROOT / experiment_file)
    assert config.experiment_id == definition.id
    assert config.name in definition.targets.gateways
    names = {config.name} | set(config.backends)
    routes = {r.path for r in config.routes}
    assert set(definition.targets.routes) <= routes  # every target route is served
    rules = [c for c in definition.abort_conditions]
    assert rules
    for rule in rules:
        for group in (rule.scope, rule.control):
            if group is None:
                continue
            for key in ("service", "gateway", "backend", "target"):
                value = getattr(group, key, None)
                assert value is None or value in names | routes, (rule.name, key, value)
            if group.route:
                assert group.route in routes, (rule.name, group.route)
    for m in definition.steady_state:
        if m.source == "requests" and m.filter is not None:
            for key in ("service", "gateway", "backend"):
                value = getattr(m.filter, key, None)
                assert value is None or value in names, (m.name, key, value)
