"""What ``hub demo`` reads back from a report, on the committed example report, and the definition it
creates: the example's, under a new id, with its halt target on the demo's fault switch."""

from __future__ import annotations

from pathlib import Path

from hub.demo.run import definition_with, examples_dir, report_first_route, report_shadow_routes
from hub.experiments.definition import load_definition

REPORT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "report" / "report.md"


def test_the_first_route_a_fault_changed_and_the_shadow_table_are_read_from_a_report():
    text = REPORT.read_text()
    assert report_first_route(text) == "/patients"
    assert report_shadow_routes(text) == {"/patients/{id}/allergies": 16, "/patients/{id}": 0}
    assert report_first_route("# no such section\n") == ""
    assert report_shadow_routes("# no such section\n") == {}


def test_the_demo_runs_the_example_experiment_under_its_own_id_with_its_own_halt_target():
    example = load_definition(examples_dir() / "experiment.yaml")
    demo = definition_with(example, "patient-api-gameday-abcdef", "http://127.0.0.1:9999/halt")
    assert demo.id == "patient-api-gameday-abcdef"
    assert [h.url for h in demo.halt] == ["http://127.0.0.1:9999/halt"]
    assert demo.abort_conditions == example.abort_conditions and demo.targets == example.targets
