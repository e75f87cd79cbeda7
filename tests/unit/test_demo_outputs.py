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


def test_the_demo_names_each_taken_port_and_the_option_that_moves_it_before_starting_anything(tmp_path):
    import socket
    from types import SimpleNamespace

    import pytest

    from hub.demo.run import CONTROL_OFFSET, Demo, DemoOptions
    from hub.errors import UserError

    taken = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken.append(s)
    http_port, switch_port = (s.getsockname()[1] for s in taken)
    try:
        options = DemoOptions(home=tmp_path, http_port=http_port, port_base=switch_port - CONTROL_OFFSET,
                              kafka_port=44731)
        demo = Demo(options, say=lambda line: None)
        not_running = SimpleNamespace(kafka=SimpleNamespace(is_running=lambda: False), worker_pid=lambda: None)
        with pytest.raises(UserError) as error:
            demo._check_ports(not_running)
        message = str(error.value)
        assert f"fault switch port {switch_port} (change it with --port-base)" in message
        assert f"hub HTTP endpoint port {http_port} (change it with --http-port)" in message
        assert "nothing was started" in message and "44731" not in message
        # this home's hub is up: its own broker and HTTP ports are no conflict
        running = SimpleNamespace(kafka=SimpleNamespace(is_running=lambda: True), worker_pid=lambda: 4242)
        with pytest.raises(UserError) as error:
            demo._check_ports(running)
        assert "HTTP" not in str(error.value)
    finally:
        for s in taken:
            s.close()


def test_the_demo_home_keeps_its_own_store_endpoint_port_apart_from_hub_up(tmp_path):
    import os

    from hub.demo.run import Demo, DemoOptions
    from hub.settings import load_settings

    saved = dict(os.environ)
    try:
        Demo(DemoOptions(home=tmp_path, store_port=48223), say=lambda line: None)._environment()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert "HUB_STORE_PORT=48223" in (tmp_path / "hub.env").read_text().splitlines()
    # `HUB_HOME=<demo home> hub dashboards export` reads it: the datasource points at the demo's endpoint
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    assert load_settings({**env, "HUB_HOME": str(tmp_path)}).store_port == 48223
    assert DemoOptions(home=tmp_path).store_port != load_settings({**env, "HUB_HOME": str(tmp_path / "x")}).store_port
