"""The findings repository across two experiments: notes and surprises written through the CLI,
found again by text, tag, service (a tag or a targeted service) and time, and exported."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

CLI = ("import sys, hub.cli.main as m; "
       "m.COMMAND_MODULES += tuple(n for n in ('hub.cli.report', 'hub.cli.findings') if n not in m.COMMAND_MODULES); "
       "sys.exit(m.main(sys.argv[1:]))")

DEFINITION = textwrap.dedent("""
    id: {id}
    title: {title}
    scenario: Stop a zone.
    hypothesis: Nothing breaks.
    expected_outcome: Nothing breaks.
    steady_state: [{{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}]
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{services: [{service}]}}
""")


def hub(env, *args, check=True):
    result = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, f"hub {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result


def search(env, *args) -> list[dict]:
    return json.loads(hub(env, "findings", "search", "--format", "json", *args).stdout)


def test_findings_across_experiments_by_text_tag_service_and_time_and_export(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_ACTOR="lucas@gameday-room") as worker:
        env = worker.env
        suffix = uuid.uuid4().hex[:6]
        first, second = f"billing-{suffix}", f"records-{suffix}"
        for eid, title, service in ((first, "Billing survives a zone outage", f"billing-{suffix}"),
                                    (second, "Patient records survive a failover", f"patient-api-{suffix}")):
            (tmp_path / f"{eid}.yaml").write_text(DEFINITION.format(id=eid, title=title, service=service))
            hub(env, "experiment", "create", str(tmp_path / f"{eid}.yaml"))
            hub(env, "experiment", "start", eid, "--force")
        hub(env, "note", first, "Invoice queue backed up for 3 minutes", "--surprise", "--expected", "no backlog",
            "--actual", "3 minutes of backlog", "--tag", "follow-up", "--tag", "queue")
        hub(env, "note", first, "Dashboards lagged by 20 s", "--tag", f"grafana-{suffix}")
        worker.wait_for(f"SELECT count() FROM hub.experiment_notes WHERE experiment_id = '{first}'", 2, timeout=30)
        time.sleep(1.1)
        between = dt.datetime.now(dt.timezone.utc).isoformat()
        time.sleep(1.1)
        hub(env, "note", second, "Connection pool held stale CONNECTIONS to the old primary", "--surprise",
            "--expected", "pool refresh within 30 s", "--actual", "stale for 4 minutes", "--tag", "follow-up",
            "--tag", f"patients-db-{suffix}")
        hub(env, "note", second, "Billing was not affected at all", "--tag", f"billing-{suffix}")
        worker.wait_for(f"SELECT count() FROM hub.experiment_notes WHERE experiment_id = '{second}'", 2, timeout=30)

        # text: case-insensitive, in the note's text, expected or actual
        found = search(env, "--text", "stale connections")
        assert [(f["experiment_id"], f["kind"]) for f in found] == [(second, "surprise")]
        assert found[0]["expected"] == "pool refresh within 30 s" and found[0]["actual"] == "stale for 4 minutes"
        assert found[0]["experiment_title"] == "Patient records survive a failover"
        assert found[0]["phase"] == "baseline"  # the phase current when the note was written
        assert found[0]["services"] == [f"patient-api-{suffix}"] and found[0]["actor"] == "lucas@gameday-room"
        assert [f["text"] for f in search(env, "--text", "3 MINUTES OF BACKLOG")] == [
            "Invoice queue backed up for 3 minutes"]

        # tag, across both experiments, oldest first
        follow = [f for f in search(env, "--tag", "FOLLOW-UP") if f["experiment_id"] in (first, second)]
        assert [f["experiment_id"] for f in follow] == [first, second]

        # service: a targeted service of the experiment, or a tag naming it
        billing = search(env, "--service", f"billing-{suffix}")
        assert [(f["experiment_id"], f["text"]) for f in billing] == [
            (first, "Invoice queue backed up for 3 minutes"), (first, "Dashboards lagged by 20 s"),
            (second, "Billing was not affected at all")]
        assert [f["experiment_id"] for f in search(env, "--service", f"patient-api-{suffix}")] == [second, second]

        # time
        later = [f for f in search(env, "--since", between) if f["experiment_id"] in (first, second)]
        assert [f["experiment_id"] for f in later] == [second, second]
        earlier = [f for f in search(env, "--until", between) if f["experiment_id"] in (first, second)]
        assert [f["experiment_id"] for f in earlier] == [first, first]
        assert search(env, "--service", f"billing-{suffix}", "--since", between, "--kind", "observation")[0][
            "text"] == "Billing was not affected at all"

        bad = hub(env, "findings", "search", "--since", "yesterday", check=False)
        assert bad.returncode == 2 and "ISO 8601" in bad.stderr

        table = hub(env, "findings", "search", "--tag", "follow-up").stdout
        assert "Invoice queue backed up" in table and "finding" in table.splitlines()[-1]

        # export: CSV, JSON and Markdown from the file name, with filters
        out = tmp_path / "findings.csv"
        assert "2 finding(s) written" in hub(env, "findings", "export", str(out), "--service", f"patient-api-{suffix}").stdout
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [r["text"] for r in rows] == ["Connection pool held stale CONNECTIONS to the old primary",
                                            "Billing was not affected at all"]
        assert rows[0]["tags"] == f"follow-up;patients-db-{suffix}"
        hub(env, "findings", "export", str(tmp_path / "all.json"))
        everything = json.loads((tmp_path / "all.json").read_text())
        assert {f["experiment_id"] for f in everything} >= {first, second}
        hub(env, "findings", "export", str(tmp_path / "surprises.md"), "--kind", "surprise", "--text", "stale")
        md = (tmp_path / "surprises.md").read_text()
        assert md.startswith("# Findings") and "| stale for 4 minutes |" in md and "Invoice" not in md
        unknown = hub(env, "findings", "export", str(tmp_path / "findings.txt"), check=False)
        assert unknown.returncode == 2 and ".csv, .json or .md" in unknown.stderr
