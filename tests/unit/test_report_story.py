"""The report tells what happened inside the run: only abort-severity rules that fired inside it in
the summary, prerequisites as recorded, secrets masked, contributors as plain numbers."""

from __future__ import annotations

import json

from hub.report.build import Report, _prerequisites
from hub.report.render import _summary, write_report

SLACK = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/Xy9aBcDeFgHiJkLmNoPqRsTu"


def alert(rule, severity="abort", status="firing", outside=False, top=None):
    return {"time": 1_800_000_000.0, "kind": "alert", "alert_id": f"e/{rule}/1", "status": status, "rule": rule,
            "severity": severity, "measurement": "count", "comparison": ">=", "threshold": 20.0, "observed": 1140.0,
            "samples": 5000, "top_contributors": json.dumps(top or [{"route": "/orders", "value": 1140, "errors": 1140}]),
            "example_request_ids": [], "message": f"rule {rule} posted to {SLACK}", "action": "", "url": "",
            "ok": None, "status_code": None, "attempts": 0, "error": "", "outside_run": outside, "latency_ms": None}


def report(**changes) -> Report:
    base = dict(experiment_id="e", database="hub",
                experiment={"status": "aborted", "abort_reason": "rule burst fired", "title": "t",
                            "started_at": 1_799_999_990.0, "ended_at": 1_800_000_010.0},
                definition={"prerequisites": [{"item": "dashboards ready", "done": False}]},
                phases=[], per_phase=[], measurements=[], series=[], bucket_seconds=1.0, faults=[], attribution={},
                alerts=[alert("burst"), alert("slow", severity="warn")],
                actions=[{"time": 1_800_000_001.0, "kind": "action", "action": "chat", "ok": True, "url": SLACK,
                          "error": "", "message": "", "status_code": 200, "latency_ms": 12.0}],
                timeline=[], notes=[], shadow={"available": False, "message": "none", "routes": []},
                outside_alerts=[alert("silence", outside=True)],
                prerequisites=[{"item": "dashboards ready", "owner": "", "planned": False, "done": True, "note": "",
                                "checked_by": "ana", "checked_at": 1_799_999_980.0}])
    base.update(changes)
    return Report(**base)


def test_the_summary_lists_only_abort_rules_that_fired_inside_the_run():
    text = _summary(report())
    assert "Abort rules fired: burst." in text
    assert "slow" not in text and "silence" not in text


def test_prerequisites_are_shown_as_recorded():
    rows = [{"results": json.dumps([{"item": "dashboards ready", "done": True, "note": "checked"}]),
             "actor": "ana", "time": 1_799_999_980.0}]

    def query(sql):
        assert "prerequisites_checked" in sql
        return {"columns": ["results", "actor", "time"], "rows": [[r["results"], r["actor"], r["time"]] for r in rows]}

    [p] = _prerequisites(query, "hub", "e", {"prerequisites": [{"item": "dashboards ready", "done": False}]})
    assert (p["done"], p["planned"], p["checked_by"], p["note"]) == (True, False, "ana", "checked")


def test_the_report_masks_secrets_and_prints_plain_numbers(tmp_path):
    [md] = write_report(report(), tmp_path, formats=["md"])
    text = md.read_text()
    assert "T0123ABCD" not in text and "Xy9aBcDeFgHiJkLmNoPqRsTu" not in text
    assert "https://hooks.slack.com/services/***/***/***" in text
    assert "| dashboards ready | - | done | ana," in text
    assert "/orders (1140)" in text and "e+03" not in text
    assert "Recorded outside the run" in text and "silence firing" in text


def test_no_abort_rule_fired_is_said_only_when_no_rule_fired(tmp_path):
    [md] = write_report(report(outside_alerts=[]), tmp_path / "fired", formats=["md"])
    assert "No abort rule fired" not in md.read_text()
    [md] = write_report(report(), tmp_path / "fired-and-outside", formats=["md"])
    assert "No abort rule fired" not in md.read_text()
    [md] = write_report(report(alerts=[], actions=[]), tmp_path / "none-inside", formats=["md"])
    text = md.read_text()
    assert "No abort rule fired" in text and "silence firing" in text
