"""The real ``chaos run`` (Chaos Toolkit from PyPI) with the hub's control module, against a live hub.

Chaos Toolkit is installed by this module's set-up, once per version, into a cache outside the
repository (``HUB_TEST_CACHE``, default ``~/.cache/gameday-hub``) with ``pip install --target``;
``chaos`` runs on the project's Python with that directory after its own site-packages, so the
control module imports the hub as installed. chaoslib passes ``state`` (the journal, the
hypothesis result, the activity's run) only to control functions whose signature names it.

What the timeline must show: a completed run is a completed experiment; a deviated steady state
is a surprise note; a fault's window is the action's own start and end from the journal, without
its ``pauses``, exactly what ``hub import chaostoolkit`` records from the same journal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hub.experiments.service import ExperimentService
from hub.integrations.chaostoolkit import parse_time
from tests.integration.test_integrations_store import create, hub  # noqa: F401  (the hub fixture)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

CHAOSTOOLKIT = ("chaostoolkit==1.19.0", "chaostoolkit-lib==1.44.0")
RUN_CHAOS = ("import sys; sys.path.append(sys.argv.pop(1)); from chaostoolkit.__main__ import cli\n"
             "sys.exit(cli(prog_name='chaos'))")


@pytest.fixture(scope="module")
def chaos_path() -> str:
    cache = Path(os.environ.get("HUB_TEST_CACHE") or Path.home() / ".cache" / "gameday-hub")
    target = cache / ("chaostoolkit-" + "-".join(p.split("==")[1] for p in CHAOSTOOLKIT))
    if not (target / "chaostoolkit").is_dir():
        partial = target.with_name(target.name + f".part-{os.getpid()}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--target", str(partial), *CHAOSTOOLKIT], check=True, timeout=600)
        try:
            partial.rename(target)
        except OSError:  # installed meanwhile by another run
            assert (target / "chaostoolkit").is_dir()
    return str(target)


def chaos_run(chaos_path: str, env: dict, tmp_path: Path, experiment: dict) -> tuple[subprocess.CompletedProcess, dict]:
    path = tmp_path / f"chaos-{uuid.uuid4().hex[:6]}.json"
    journal = path.with_suffix(".journal.json")
    path.write_text(json.dumps(experiment))
    result = subprocess.run([sys.executable, "-c", RUN_CHAOS, chaos_path, "--no-log-file", "run",
                             "--journal-path", str(journal), str(path)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert journal.exists(), result.stdout + result.stderr
    return result, json.loads(journal.read_text())


def chaos_experiment(hub_id: str, settings, marker: Path, method: list) -> dict:
    exists = {"type": "probe", "name": "marker-exists", "tolerance": True,
              "provider": {"type": "python", "module": "os.path", "func": "exists",
                           "arguments": {"path": str(marker)}}}
    return {"version": "1.0.0", "title": "Stop and start the patient cache", "description": "gameday",
            "steady-state-hypothesis": {"title": "the patient cache answers", "probes": [exists]},
            "method": method, "rollbacks": [],
            "controls": [{"name": "gameday-hub", "provider": {
                "type": "python", "module": "hub.integrations.chaostoolkit",
                "arguments": {"experiment_id": hub_id, "bootstrap": settings.bootstrap,
                              "topic": settings.topic_experiments}}}]}


def ms(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def window(fault) -> tuple[dt.datetime, dt.datetime]:
    return fault.start, fault.end


def test_a_real_chaos_run_completes_the_experiment_with_the_actions_own_fault_window(hub, chaos_path, tmp_path):
    worker, cli = hub
    settings = worker.settings
    live = create(cli, tmp_path, "patient-cache", start=False)
    imported = create(cli, tmp_path, "patient-cache", start=False)  # the same journal, imported afterwards
    marker = tmp_path / "cache-up"
    marker.write_text("up")
    true = {"type": "process", "path": "true", "arguments": ""}
    method = [{"type": "action", "name": "stop-cache", "provider": true, "pauses": {"before": 1, "after": 2}},
              {"type": "action", "name": "start-cache", "provider": true, "pauses": {"after": 2}}]
    result, journal = chaos_run(chaos_path, dict(worker.env), tmp_path,
                                chaos_experiment(live, settings, marker, method))
    assert result.returncode == 0 and journal["status"] == "completed" and not journal["deviated"], result.stderr
    stop, start = journal["run"]
    service = ExperimentService(settings)
    try:
        state = service.get(live)
        assert state.status == "completed", (state.status, state.abort_reason)
        assert state.summary == "Chaos Toolkit run completed; the steady state held"
        assert [(f.action, f.injector) for f in state.fault_history] == [("stop-cache", "chaostoolkit")]
        # the fault lasted from the stop action's own start to the start action's own end: no pauses
        assert window(state.fault_history[0]) == (ms(parse_time(stop["start"])), ms(parse_time(start["end"])))
        assert [n.note_kind for n in state.notes] == ["observation"]
        assert [p.phase for p in state.phase_history] == ["baseline", "injection", "observation", "recovery"]

        path = tmp_path / "journal.json"
        path.write_text(json.dumps(journal))
        out = cli("import", "chaostoolkit", str(path), "--experiment", imported)
        assert out.returncode == 0, out.stderr
        again = service.get(imported)
        assert again.status == "completed"
        assert [window(f) for f in again.fault_history] == [window(f) for f in state.fault_history]
        events = len(service.history(live))
    finally:
        service.close()
    query = f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{live}'"
    assert worker.wait_for(query, events, timeout=60) == events


def test_a_real_chaos_run_whose_steady_state_deviates_is_a_surprise(hub, chaos_path, tmp_path):
    worker, cli = hub
    settings = worker.settings
    live = create(cli, tmp_path, "patient-cache", start=False)
    marker = tmp_path / "cache-up"
    marker.write_text("up")
    method = [{"type": "action", "name": "stop-cache",
               "provider": {"type": "process", "path": "rm", "arguments": str(marker)}}]
    result, journal = chaos_run(chaos_path, dict(worker.env), tmp_path,
                                chaos_experiment(live, settings, marker, method))
    assert journal["deviated"] is True, result.stderr
    service = ExperimentService(settings)
    try:
        state = service.get(live)
    finally:
        service.close()
    surprises = [n for n in state.notes if n.note_kind == "surprise"]
    assert [(n.text, n.actual) for n in surprises] == [
        ("Chaos Toolkit steady state 'the patient cache answers' not met after the method",
         "marker-exists: output not within tolerance")]
    assert state.status == "aborted" and state.abort_reason == \
        f"Chaos Toolkit run {journal['status']}: the steady state deviated after the method"
    assert [(f.action, f.end is not None) for f in state.fault_history] == [("stop-cache", True)]


def test_imports_into_an_ended_experiment_are_refused_unless_forced_and_each_warning_prints_once(hub, tmp_path):
    worker, cli = hub
    ended = create(cli, tmp_path, "frontend")
    cli("experiment", "abort", ended, "--reason", "the error budget ran out")
    service = ExperimentService(worker.settings)
    try:
        before = len(service.history(ended))
    finally:
        service.close()
    journal = Path(__file__).resolve().parents[1] / "data" / "tools" / "chaostoolkit-journal-deviated.json"
    vegeta = Path(__file__).resolve().parents[1] / "data" / "tools" / "vegeta-encode.jsonl"
    for args in (("chaostoolkit", str(journal)), ("vegeta", str(vegeta)),
                 ("dropwizard", "http://127.0.0.1:9/metrics", "--service", "patients", "--count", "1")):
        refused = cli("import", *args, "--experiment", ended, check=False)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert refused.stderr.startswith(f"hub: error: experiment {ended} is aborted (ended at ")
        assert refused.stderr.endswith("nothing imported; give --force to import into an ended experiment\n")
        assert refused.stdout == ""
    service = ExperimentService(worker.settings)
    try:
        assert len(service.history(ended)) == before  # nothing appended
    finally:
        service.close()

    forced = cli("import", "chaostoolkit", str(journal), "--experiment", ended, "--force")
    warnings = forced.stderr.splitlines()
    assert warnings and all(w.startswith("hub: warning: ") for w in warnings), forced.stderr
    assert f"hub: warning: experiment {ended} is aborted" in warnings
    assert len(set(warnings)) == len(warnings)  # each problem once, not also as a log line
