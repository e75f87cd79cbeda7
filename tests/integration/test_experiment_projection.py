"""The experiment views show only what the lifecycle fold accepts; refused events are kept apart.

Forged lifecycle events written straight to the experiment topic (as anyone with write access
to it could) are stored in ``experiment_events`` (the audit trail) with the fold's refusal, never
shown by the views as the experiment's state, and listed by ``experiment_refused_events`` with
the reason; the same across a worker's restart and after ``hub replay``. Experiment events that cannot be decoded safely (nested
too deep, oversized, wrong types) are dead letters with their reason.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import uuid

import pytest

from hub.experiments.events import ExperimentAborted, ExperimentCompleted, encode_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Forged ends of a draft
    scenario: Nothing runs; the log receives events nobody commanded.
    hypothesis: The views show the draft as a draft.
    expected_outcome: Draft.
    steady_state:
      - name: errors
        sli: error_rate
        source: requests
        tolerance: {{max: 0.05}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets:
      gateways: [gw-forged]
    phases:
      - {{name: baseline, planned_minutes: 1}}
""")

FORGED_REASON = "FORGED-abort-reason-7f3a"


def cli(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=300, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def sql(env, query):
    out = cli(env, "sql", query, "--format", "json").stdout
    return [json.loads(line) for line in out.splitlines()]


def forged(experiment: str) -> list[bytes]:
    """A completion and an abort of the draft, numbered as the next events of its timeline."""
    now = dt.datetime.now(dt.timezone.utc)
    common = dict(experiment_id=experiment, actor="mallory@nowhere", time=now, sequence=2)
    return [encode_event(ExperimentCompleted(event_id=str(uuid.uuid4()), summary="all good", **common)),
            encode_event(ExperimentAborted(event_id=str(uuid.uuid4()), reason=FORGED_REASON, by="mallory",
                                           **common))]


def produce(bootstrap, topic, records):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4_000_000)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(30)
    finally:
        producer.close(5)


def check_views(env, experiment):
    """The views say draft, carry the forged reason nowhere, and the audit view lists both forgeries."""
    [row] = sql(env, f"SELECT status, abort_reason, aborted_by, ended_at, version FROM hub.experiments "
                     f"WHERE experiment_id = '{experiment}'")
    assert row == {"status": "draft", "abort_reason": "", "aborted_by": "", "ended_at": None, "version": 2}
    for view in ("experiments", "experiment_phases", "experiment_faults", "experiment_notes"):
        rows = sql(env, f"SELECT * FROM hub.{view} WHERE experiment_id = '{experiment}'")
        assert FORGED_REASON not in json.dumps(rows) and "mallory" not in json.dumps(rows), view
    notes = sql(env, f"SELECT text FROM hub.experiment_notes WHERE experiment_id = '{experiment}'")
    assert notes == [{"text": "nothing started yet"}]
    refused = sql(env, "SELECT kind, sequence, actor, refusal, source_offset >= 0 AS placed "
                       f"FROM hub.experiment_refused_events WHERE experiment_id = '{experiment}' ORDER BY kind")
    assert [(r["kind"], r["sequence"], r["actor"], r["placed"]) for r in refused] == [
        ("experiment_aborted", 2, "mallory@nowhere", 1), ("experiment_completed", 2, "mallory@nowhere", 1)]
    assert "cannot abort experiment" in refused[0]["refusal"] and "it is draft" in refused[0]["refusal"]
    assert "cannot complete experiment" in refused[1]["refusal"] and "it is draft" in refused[1]["refusal"]
    # The audit trail keeps every event, the forged ones too.
    trail = sql(env, f"SELECT kind, accepted FROM hub.experiment_events WHERE experiment_id = '{experiment}' "
                     "ORDER BY source_offset")
    assert [(r["kind"], r["accepted"]) for r in trail] == [
        ("experiment_created", 1), ("experiment_completed", 0), ("experiment_aborted", 0), ("note_added", 1)]


def test_forged_ends_of_a_draft_are_refused_in_the_views_across_a_restart_and_a_replay(tmp_path, kafka_bootstrap):
    worker = WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_ACTOR="ana@gameday-room")
    env = dict(worker.env)
    settings = worker.settings
    experiment = f"forged-{uuid.uuid4().hex[:6]}"
    definition = tmp_path / "experiment.yaml"
    definition.write_text(DEFINITION.format(id=experiment))
    try:
        cli(env, "experiment", "create", str(definition))
        events = f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'"
        assert worker.wait_for(events, 1, timeout=60) == 1
        for n, value in enumerate(forged(experiment), 2):  # one batch each: three ledger entries
            produce(kafka_bootstrap, settings.topic_experiments, [(experiment.encode(), value)])
            assert worker.wait_for(events, n, timeout=60) == n
        # A worker killed and started again re-checks the partition's two last batches (offsets 1
        # and 2), and judges them and the next event from the log before them (the creation).
        worker.kill()
        worker.launch()
        # The registry ignored both forgeries: the next command is numbered 2 and goes through.
        cli(env, "note", experiment, "nothing started yet")
        shown = json.loads(cli(env, "experiment", "show", experiment, "--json").stdout)
        assert shown["status"] == "draft"
        assert worker.wait_for(events, 4, timeout=60) == 4
        check_views(env, experiment)
    finally:
        worker.stop()
    cli(env, "replay", "--yes")
    check_views(env, experiment)


def test_experiment_events_that_cannot_be_decoded_safely_are_dead_letters(tmp_path, kafka_bootstrap):
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_MAX_RECORD_BYTES="20000") as worker:
        settings = worker.settings
        experiment = f"poison-{uuid.uuid4().hex[:6]}"
        base = {"kind": "note_added", "experiment_id": experiment, "event_id": str(uuid.uuid4()),
                "actor": "x", "time": "2026-01-01T00:00:00Z", "sequence": 2, "note_id": "n1",
                "note_kind": "observation", "text": "t"}
        deep = json.dumps({**base, "tags": []})[:-1].encode() + b', "extra": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
        oversized = json.dumps({**base, "text": "x" * (settings.max_record_bytes + 10)}).encode()
        wrong_type = json.dumps({**base, "sequence": "two"}).encode()
        far_future = json.dumps({**base, "time": "9999-01-01T00:00:00Z"}).encode()
        key = experiment.encode()
        produce(settings.bootstrap, settings.topic_experiments,
                [(key, deep), (key, oversized), (key, wrong_type), (key, far_future)])
        dead = (f"SELECT count() FROM hub.dead_letters WHERE source_topic = '{settings.topic_experiments}'")
        assert worker.wait_for(dead, 4, timeout=60) == 4
        reasons = [r[0] for r in worker.sql(
            f"SELECT reason FROM hub.dead_letters WHERE source_topic = '{settings.topic_experiments}' "
            "ORDER BY source_offset")]
        assert reasons[0].startswith("too deeply nested: > 64 levels")
        assert reasons[1].startswith("oversized:")
        assert reasons[2].startswith("schema:") and "sequence" in reasons[2]
        assert reasons[3].startswith("timestamp out of range: time ")
        assert worker.sql(f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'") == [[0]]
        # The worker is still there and the registry still follows the log.
        assert worker.process.poll() is None
