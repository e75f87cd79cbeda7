"""``hub demo --short`` as a newcomer runs it, checked against its own ground truth with SQL on the store.

The demo starts a worker with the embedded store (on the test's broker, as ``hub up`` does when
``HUB_KAFKA_BOOTSTRAP`` is set), the example backends, ``hub gateway`` with the example config, a load
generator and a scripted fault: the primary fails on ``/appointments/{id}`` until the example's abort
rule fires and its halt target (the demo's fault switch) removes the fault. The shadow version differs
from the primary on ``/patients/{id}/allergies`` only, by design. Checked here:

- the abort alert fired inside the run: after the start, after the fault, and not after the end;
- the halt target was called once (by the backends' own count, and one halt action in ``hub.alerts``);
- the report ranks the faulted route first among the routes the fault changed;
- the shadow comparison reports real differences on the differing route only (SQL and report).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.runtime.stack import Stack
from hub.settings import load_settings
from hub.testing import isolated_env

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

FAULT_ROUTE = "/appointments/{id}"
DIFFERING_ROUTE = "/patients/{id}/allergies"


def _port_base() -> int:
    """A port with the five after it free too (gateway, four backends, the fault switch), below the
    ephemeral range, so that no client connection made while the worker starts takes one of them."""
    import random
    import socket

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]) \
        if Path("/proc/sys/net/ipv4/ip_local_port_range").exists() else 32768
    for _ in range(200):
        base = random.randrange(20000, min(low, 32000) - 6)
        ok = True
        for port in range(base, base + 6):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no six free ports in a row")


@pytest.fixture(scope="module")
def demo(kafka_bootstrap, tmp_path_factory):
    home = tmp_path_factory.mktemp("demo-home")
    env = isolated_env(home, kafka_bootstrap)
    http_port = env["HUB_HTTP_PORT"]
    out = home / "run"
    argv = [sys.executable, "-m", "hub.cli.main", "demo", "--short", "--home", str(home), "--out", str(out),
            "--http-port", http_port, "--port-base", str(_port_base())]
    settings = load_settings({**env, "HUB_HOME": str(home)})
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        truth = json.loads((out / "ground-truth.json").read_text()) if (out / "ground-truth.json").exists() else {}
        yield {"done": done, "truth": truth, "out": out, "stack": Stack(settings), "db": settings.database}
    finally:
        Stack(settings).down(progress=lambda line: None)


def sql(demo, query: str) -> list[list]:
    return demo["stack"].api("/v1/sql", {"query": query}, timeout=60)["rows"]


def test_the_demo_runs_to_its_report_and_says_where_to_look(demo):
    done = demo["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out: Path = demo["out"]
    assert (out / "report" / "report.md").is_file()
    assert any((out / "dashboards").rglob("*.json"))
    for what in ("report:", "dashboards:", "SQL to try:", "hub status"):
        assert what in done.stdout


def test_the_abort_rule_fired_inside_the_run_after_the_fault(demo):
    x, db = demo["truth"]["experiment_id"], demo["db"]
    run = sql(demo, f"SELECT toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), status "
                    f"FROM {db}.experiments WHERE experiment_id = '{x}'")
    assert len(run) == 1
    started, ended, status = int(run[0][0]) / 1000, int(run[0][1]) / 1000, run[0][2]
    assert status == "aborted"
    fired = sql(demo, f"SELECT rule, toUnixTimestamp64Milli(time) FROM {db}.alerts WHERE experiment_id = '{x}' "
                      "AND kind = 'alert' AND status = 'firing' AND severity = 'abort' ORDER BY time")
    assert fired, "no abort alert was stored"
    rule, first = fired[0][0], int(fired[0][1]) / 1000
    assert rule == "api-failing"
    assert started <= first <= ended
    assert first >= demo["truth"]["fault"]["injected_at"] - 1.0  # nothing before the fault breached
    # every abort alert that acted was inside the run; none fired again after the abort
    late = sql(demo, f"SELECT count() FROM {db}.alerts WHERE experiment_id = '{x}' AND kind = 'alert' "
                     f"AND status = 'firing' AND severity = 'abort' AND toUnixTimestamp64Milli(time) > {int(ended * 1000)} "
                     "AND NOT outside_run")
    assert late[0][0] == 0


def test_the_halt_target_was_called_once(demo):
    truth, x, db = demo["truth"], demo["truth"]["experiment_id"], demo["db"]
    assert len(truth["halt_calls"]) == 1, truth["halt_calls"]
    assert truth["halt_calls"][0]["fault_was_on"]
    assert truth["fault"]["removed_by"] == "halt target"
    actions = sql(demo, f"SELECT count(), countIf(ok) FROM {db}.alerts WHERE experiment_id = '{x}' "
                        "AND kind = 'action' AND action = 'halt'")
    assert actions[0] == [1, 1]


def test_the_report_names_the_faulted_route_first(demo):
    from hub.demo.run import report_first_route

    text = (demo["out"] / "report" / "report.md").read_text()
    assert report_first_route(text) == FAULT_ROUTE


def test_the_shadow_comparison_reports_the_differing_route_only(demo):
    from hub.demo.run import report_shadow_routes

    x, db = demo["truth"]["experiment_id"], demo["db"]
    rows = sql(demo, f"SELECT route, count(), countIf(outcome IN ('status_mismatch', 'body_mismatch')) "
                     f"FROM {db}.shadow_pairs WHERE experiment_id = '{x}' GROUP BY route ORDER BY route")
    pairs = {r: (int(n), int(d)) for r, n, d in rows}
    assert set(pairs) == {"/patients/{id}", DIFFERING_ROUTE}
    assert pairs["/patients/{id}"][1] == 0
    assert pairs[DIFFERING_ROUTE][1] == pairs[DIFFERING_ROUTE][0] > 0  # every allergies answer differs
    reported = report_shadow_routes((demo["out"] / "report" / "report.md").read_text())
    assert {r for r, n in reported.items() if n} == {DIFFERING_ROUTE}


def test_the_fault_is_on_the_timeline_when_it_happened(demo):
    """The injection carries the moment the fault switch answered; the removal the moment the switch
    took the halt call, or the abort's time when that came later (a timeline's events are in time
    order)."""
    truth, x, db = demo["truth"], demo["truth"]["experiment_id"], demo["db"]
    rows = sql(demo, f"SELECT kind, toUnixTimestamp64Milli(time) FROM {db}.experiment_events "
                     f"WHERE experiment_id = '{x}' AND accepted AND kind IN ('fault_injected', 'fault_removed', "
                     "'experiment_aborted') ORDER BY sequence")
    times = {kind: int(ms) / 1000 for kind, ms in rows}
    assert abs(times["fault_injected"] - truth["fault"]["injected_at"]) < 0.002
    halted = truth["halt_calls"][0]["time"]
    assert abs(times["fault_removed"] - max(halted, times["experiment_aborted"])) < 0.002


def test_the_ground_truth_lists_only_alerts_the_hub_acted_on(demo):
    truth, x, db = demo["truth"], demo["truth"]["experiment_id"], demo["db"]
    inside = sql(demo, f"SELECT DISTINCT rule FROM {db}.alerts WHERE experiment_id = '{x}' AND kind = 'alert' "
                       "AND status = 'firing' AND NOT outside_run")
    outside = sql(demo, f"SELECT DISTINCT rule FROM {db}.alerts WHERE experiment_id = '{x}' AND kind = 'alert' "
                        "AND status = 'firing' AND outside_run")
    assert {a["rule"] for a in truth["hub"]["alerts"]} == {r for [r] in inside}
    assert {a["rule"] for a in truth["hub"]["alerts_outside_run"]} == {r for [r] in outside}
