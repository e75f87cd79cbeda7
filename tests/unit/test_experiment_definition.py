"""Experiment definition files: the example validates, and every mistake is named by its field path."""

from __future__ import annotations

import copy
import json
import re

import msgspec
import pytest
import yaml

from hub.errors import UserError
from hub.experiments.definition import (
    STANDARD_PHASES,
    DefinitionError,
    DurationError,
    ExperimentDefinition,
    definition_from_dict,
    definition_to_dict,
    derive_id,
    load_definition,
    parse_definition,
    parse_duration,
)
from hub.settings import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "experiments"
EXAMPLE = EXAMPLES / "patient-api-db-failover.yaml"

MINIMAL = """
title: Checkout survives a slow payment provider
scenario: Add 800 ms to every call from checkout to the payment provider.
hypothesis: p99 stays under 2 s.
expected_outcome: No failed checkouts.
steady_state:
  - {name: p99, sli: latency_p99, source: requests, tolerance: {max: 2000}}
environment: {name: staging, kind: non-live, risk: low}
targets: {services: [checkout]}
"""


def example_data() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def parse_data(data: dict) -> ExperimentDefinition:
    return parse_definition(yaml.safe_dump(data, sort_keys=False), source="experiment.yaml")


def test_the_example_validates():
    defn = load_definition(EXAMPLE)
    assert defn.id == "patient-api-db-failover"
    assert defn.environment.kind == "non-live"
    assert [p.name for p in defn.phases] == list(STANDARD_PHASES)
    assert {m.sli for m in defn.steady_state} >= {"error_rate", "latency_p99", "shadow_mismatch_rate"}
    assert any("connection-refresh telemetry" in p.item.lower() for p in defn.prerequisites)
    assert defn.abort_conditions[0].for_ == "1m" and defn.abort_conditions[0].comparison == ">"
    assert {c.severity for c in defn.abort_conditions} == {"abort", "warn"}


def test_every_example_file_validates():
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    for path in files:
        load_definition(path)


def test_the_readme_documents_every_field():
    readme = (EXAMPLES / "README.md").read_text()

    def fields(cls) -> set[str]:
        out = set()
        for f in msgspec.structs.fields(cls):
            out.add(f.encode_name)
            for t in re.findall(r"\b[A-Z]\w+", str(f.type)):
                sub = getattr(__import__("hub.experiments.definition", fromlist=[t]), t, None)
                if isinstance(sub, type) and issubclass(sub, msgspec.Struct):
                    out |= fields(sub)
        return out

    missing = sorted(name for name in fields(ExperimentDefinition) if f"`{name}`" not in readme)
    assert missing == []


def test_defaults_of_a_minimal_definition():
    defn = parse_definition(MINIMAL)
    assert defn.id is None
    assert [p.name for p in defn.phases] == list(STANDARD_PHASES)
    assert defn.participants == [] and defn.prerequisites == [] and defn.abort_conditions == []


@pytest.mark.parametrize("defn", ["example", "minimal"])
def test_round_trip_through_json(defn):
    d = load_definition(EXAMPLE) if defn == "example" else parse_definition(MINIMAL)
    data = json.loads(json.dumps(definition_to_dict(d)))
    assert definition_from_dict(data) == d
    assert definition_to_dict(definition_from_dict(data)) == data
    assert data["abort_conditions"] == [] or "for" in data["abort_conditions"][0]  # the YAML name, not for_


def _set(path: str, value):
    def change(data: dict) -> None:
        *parents, last = re.findall(r"[^.\[\]]+", path)
        node = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return change


_DELETE = object()


def _append(path: str, extra):
    def change(data: dict) -> None:
        node = data
        for part in re.findall(r"[^.\[\]]+", path):
            node = node[int(part)] if part.isdigit() else node[part]
        node.append(copy.deepcopy(extra(data)))
    return change


INVALID = [
    (_set("environment.kind", "production"), _set("environment.approver", _DELETE),
     "experiment.yaml: environment.approver: required when environment.kind is production"),
    (_set("abort_conditions.1.comparison", "=>"), None,
     "experiment.yaml: abort_conditions[1].comparison: expected one of >, >=, <, <=, got '=>'"),
    (_set("environment.kind", "prod"), None, "environment.kind: expected one of non-live, production, got 'prod'"),
    (_set("environment.risk", 3), None, "environment.risk: expected one of low, medium, high, got 3"),
    (_set("titel", "x"), None, "titel: unknown field (expected one of: id, title, scenario"),
    (_set("environment.region", "eu"), None, "environment.region: unknown field"),
    (_set("title", _DELETE), None, "experiment.yaml: title: required"),
    (_set("title", ""), None, "title: must not be empty"),
    (_set("id", "Patient_API"), None, "id: expected a slug of 3 to 63 lowercase letters"),
    (_set("id", "ab"), None, "id: expected a slug"),
    (_set("steady_state", []), None, "steady_state: must list at least one entry"),
    (_set("steady_state.0.sli", "p99"), None, "steady_state[0].sli: expected one of error_rate, latency_p50"),
    (_set("steady_state.0.source", "logs"), None, "steady_state[0].source: expected one of requests, spans"),
    (_set("steady_state.0.filter.leg", "mirror"), None, "steady_state[0].filter.leg: expected one of primary, shadow, canary"),
    (_set("steady_state.0.filter.route", "patients"), None, "steady_state[0].filter.route: expected a route template"),
    (_set("steady_state.1.tolerance", {}), None, "steady_state[1].tolerance: needs max, min or both"),
    (_set("steady_state.1.tolerance", {"min": 5, "max": 1}), None, "steady_state[1].tolerance: min (5) is greater than max (1)"),
    (_set("steady_state.1.tolerance.max", "fast"), None, "steady_state[1].tolerance.max: expected a number, got 'fast'"),
    (_set("steady_state.4.source", "requests"), None, "steady_state[4].source: span_error_rate is measured on spans"),
    (_set("steady_state.1.name", "api-error-rate"), None, "steady_state[1].name: duplicate measurement 'api-error-rate' (also steady_state[0])"),
    (_set("participants.0.role", "boss"), None, "participants[0].role: expected one of lead, observer, injector, approver, scribe, responder, got 'boss'"),
    (_set("prerequisites.0.done", "maybe"), None, "prerequisites[0].done: expected true or false, got 'maybe'"),
    (_append("prerequisites", lambda d: d["prerequisites"][0]), None, "prerequisites[5].item: duplicate prerequisite"),
    (_set("targets", {"services": [], "routes": []}), None, "targets: at least one of services, routes, gateways or backends"),
    (_set("targets.routes", ["/ok", "no-slash"]), None, "targets.routes[1]: expected a route template"),
    (_set("targets.services", "patient-api"), None, "targets.services: expected a list, got 'patient-api'"),
    (_set("phases.1.planned_minutes", 0), None, "phases[1].planned_minutes: expected a number > 0, got 0"),
    (_set("phases.1.name", "Injection"), None, "phases[1].name: expected a lowercase phase name"),
    (_set("phases.3.name", "baseline"), None, "phases[3].name: duplicate phase 'baseline' (also phases[0])"),
    (_set("phases", []), None, "phases: must list at least one entry"),
    (_set("abort_conditions.0.measurement", "latency"), None, "abort_conditions[0].measurement: expected one of error_rate"),
    (_set("abort_conditions.0.window", "30 seconds"), None, "abort_conditions[0].window: invalid duration '30 seconds'"),
    (_set("abort_conditions.0.window", "0s"), None, "abort_conditions[0].window: must be longer than zero, got '0s'"),
    (_set("abort_conditions.0.for", 30), None, "abort_conditions[0].for: expected a duration string, got 30"),
    (_set("abort_conditions.0.for", "soon"), None, "abort_conditions[0].for: invalid duration 'soon'"),
    (_set("abort_conditions.0.min_samples", 0), None, "abort_conditions[0].min_samples: expected a number >= 1, got 0"),
    (_set("abort_conditions.0.severity", "page"), None, "abort_conditions[0].severity: expected one of abort, warn, got 'page'"),
    (_set("abort_conditions.0.threshold", float("nan")), None, "abort_conditions[0].threshold: expected a finite number, got nan"),
    (_set("phases.0.planned_minutes", float("inf")), None, "phases[0].planned_minutes: expected a finite number, got inf"),
    (_set("steady_state.0.tolerance.max", float("-inf")), None, "steady_state[0].tolerance.max: expected a finite number, got -inf"),
    (_set("abort_conditions.0.scope.team", "db"), None, "abort_conditions[0].scope.team: unknown field (expected one of: leg, route, service, gateway, backend, target)"),
    (_set("abort_conditions.2.name", "api-failing"), None, "abort_conditions[2].name: duplicate abort condition 'api-failing'"),
    (_set("tags", "db"), None, "tags: expected a list, got 'db'"),
    (_set("abort_conditions.0.measurement", "ratio"), None,
     "abort_conditions[0].where: required for measurement ratio: which request legs to count"),
    (_set("abort_conditions.0.where", {"status": [504]}), None, "abort_conditions[0].where: only for measurement count or ratio"),
    (_set("abort_conditions.0.measurement", "count"), _set("abort_conditions.0.where", {"status": ["6xx"]}),
     "abort_conditions[0].where.status[0]"),
    (_set("abort_conditions.0.measurement", "count"), _set("abort_conditions.0.where", {"colour": "red"}),
     "abort_conditions[0].where.colour: unknown field"),
    (_set("abort_conditions.0.measurement", "count"),
     lambda d: d["abort_conditions"][0].update(where={"method": ["GET"]}, of={"method": ["GET"]}),
     "abort_conditions[0].of: only for measurement ratio"),
    (_set("abort_conditions.0.measurement", "latency_p99"), _set("abort_conditions.0.control", {"target": "v1"}),
     "abort_conditions[0].control: a control group compares proportions"),
]


@pytest.mark.parametrize("change,also,expected", INVALID, ids=[e[2].split(":")[0 if not e[2].startswith("experiment") else 1].strip() + f"-{i}" for i, e in enumerate(INVALID)])
def test_invalid_fields_are_named_by_their_path(change, also, expected):
    data = example_data()
    change(data)
    if also:
        also(data)
    with pytest.raises(DefinitionError) as info:
        parse_data(data)
    message = str(info.value)
    assert message.startswith("experiment.yaml: ")
    assert expected in message
    assert re.search(r"\(line \d+\)$", message), message
    assert "\n" not in message
    assert isinstance(info.value, UserError)


def test_the_line_points_at_the_field():
    text = EXAMPLE.read_text().replace('comparison: ">="', 'comparison: "=>"')
    line = next(i for i, l in enumerate(text.splitlines(), 1) if '"=>"' in l)
    with pytest.raises(DefinitionError, match=rf"abort_conditions\[1\]\.comparison: .* \(line {line}\)$"):
        parse_definition(text, source="experiment.yaml")


def test_yaml_syntax_errors_give_the_line():
    text = "title: x\nscenario: [unclosed\nhypothesis: y\n"
    with pytest.raises(DefinitionError, match=r"^experiment.yaml: line \d+, column \d+: YAML syntax error: "):
        parse_definition(text, source="experiment.yaml")
    bad_indent = "title: x\nenvironment:\n  name: a\n   kind: non-live\n"
    with pytest.raises(DefinitionError, match=r"^e.yaml: line 4, column 8: YAML syntax error: mapping values are not allowed"):
        parse_definition(bad_indent, source="e.yaml")


def test_duplicate_keys_are_refused_with_both_lines():
    text = MINIMAL + "targets: {routes: [/checkout]}\n"
    with pytest.raises(DefinitionError, match=r"line 10, column 1: YAML syntax error: duplicate key 'targets' \(first at line 9\)"):
        parse_definition(text, source="e.yaml")


@pytest.mark.parametrize("text,problem", [
    ("", "the definition is empty"),
    ("- a\n- b\n", "expected a mapping of fields at the top level, got a list"),
    ("just text", "expected a mapping of fields at the top level, got 'just text'"),
])
def test_not_a_definition(text, problem):
    with pytest.raises(DefinitionError, match=f"^x.yaml: {re.escape(problem)}"):
        parse_definition(text, source="x.yaml")


def test_a_missing_file_is_a_definition_error(tmp_path):
    with pytest.raises(DefinitionError, match="nope.yaml: cannot read the definition file"):
        load_definition(tmp_path / "nope.yaml")


def test_production_with_an_approver_is_valid():
    data = example_data()
    data["environment"] = {"name": "prod-eu", "kind": "production", "risk": "high", "approver": "CAB"}
    assert parse_data(data).environment.approver == "CAB"


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30), ("1m", 60), ("1m30s", 90), ("250ms", 0.25), ("1h", 3600), ("1.5h", 5400),
    ("2h15m", 8100), ("0", 0), ("0s", 0), (" 45s ", 45), ("1s500ms", 1.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "5 min", "1x", "-1s", "s", "1m 30s", "1.s", "1d"])
def test_parse_duration_refuses(text):
    with pytest.raises(DurationError, match="invalid duration .*: expected numbers with units ms, s, m or h"):
        parse_duration(text)
    with pytest.raises(ValueError):  # usable where a ValueError is expected (argparse types)
        parse_duration(text)


def test_derived_ids_are_valid_slugs():
    for title in ["Patient records API: failover!", "!!!", "x" * 200, "Ärzte-Portal & Co"]:
        slug = derive_id(title)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{2,62}", slug), slug
    assert derive_id("Patient API failover", suffix="abc123") == "patient-api-failover-abc123"
    assert derive_id("Same title") != derive_id("Same title")


RULES = """
abort_conditions:
  - {name: errors, measurement: error_rate, window: 30s, comparison: ">", threshold: 0.05}
  - {name: errors-guarded, measurement: error_rate, window: 30s, comparison: ">", threshold: 0.05, min_samples: 100}
  - {name: traffic, measurement: request_rate, window: 30s, comparison: "<", threshold: 1}
  - {name: versus-control, measurement: error_rate, window: 30s, comparison: ">", threshold: 0.02,
     control: {leg: primary}}
"""


def test_a_rate_rule_without_min_samples_is_named_in_the_advisories():
    from hub.experiments.definition import advisories

    lines = advisories(parse_definition(MINIMAL + RULES))
    # only the share left at one sample: a count, a guarded rule and a control comparison are fine
    assert len(lines) == 1
    assert lines[0].startswith("abort condition 'errors': error_rate with min_samples 1")
    assert advisories(parse_definition(MINIMAL)) == []


def test_experiment_validate_prints_the_advisories_as_warnings_and_still_passes(tmp_path, capsys):
    from hub.cli.main import main

    path = tmp_path / "experiment.yaml"
    path.write_text(MINIMAL + RULES)
    assert main(["experiment", "validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    assert captured.err.strip().splitlines() == [
        "warning: abort condition 'errors': error_rate with min_samples 1 can fire on a single request or the "
        "first partial batch of a window; set min_samples (for example 100)"]
