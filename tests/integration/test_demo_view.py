"""What ``hub demo`` writes as the hub's side of its ground truth: the alerts the judge acted on
(inside the run) apart from those recorded outside it, read with SQL from a real store (chDB)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from hub.abort.records import ALERT_COLUMNS, alert_row
from hub.demo.run import Demo

pytestmark = [pytest.mark.clickhouse]


def alert(rule, severity, at, outside=False, kind="alert", action=""):
    return alert_row({"time": dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat(), "kind": kind, "alert_id": f"x/{rule}/{int(at)}", "status": "firing",
                      "experiment_id": "x", "rule": rule, "severity": severity, "measurement": "error_rate",
                      "comparison": ">", "threshold": 0.05, "observed": 0.2, "samples": 100, "top_contributors": [],
                      "example_request_ids": [], "message": "m", "action": action, "url": "", "ok": True,
                      "status_code": 200, "attempts": 1, "error": "", "outside_run": outside, "latency_ms": 1.0})


def test_the_demo_lists_only_alerts_inside_the_run_among_the_hubs_alerts(store, hub_settings, tmp_path):
    now = time.time()
    store.insert(f"{hub_settings.database}.alerts", [alert("v2-diverging", "warn", now - 60, outside=True),  # before the start
                            alert("api-failing", "abort", now - 20),
                            alert("api-failing", "abort", now - 20, kind="action", action="halt"),
                            alert("api-silent", "abort", now + 33, outside=True)],  # after the abort
                 ALERT_COLUMNS)
    demo = object.__new__(Demo)
    demo.settings, demo.experiment_id, demo.out = hub_settings, "x", tmp_path
    demo.sql = lambda sql: [list(r) for r in store.query(sql).result_rows]
    view = demo.hub_view()
    assert [(a["rule"], a["severity"]) for a in view["alerts"]] == [("api-failing", "abort")]
    assert [a["rule"] for a in view["alerts_outside_run"]] == ["v2-diverging", "api-silent"]
    assert view["halt_actions"] == 1
