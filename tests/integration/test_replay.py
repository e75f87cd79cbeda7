"""``hub replay`` rebuilds beside the live database and swaps only a whole rebuild in.

A replay that cannot read every topic to its end (here: its time runs out) leaves the hub's
database exactly as it was, drops the half-built one and exits non-zero with one line; a replay
that completes replaces the database with one holding the same rows, views working on the new
tables, and no database left behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid

import pytest

from hub.testing import StoreServerProcess, WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

#: Rows (and a checksum of their content) of every table the sinks fill from Kafka.
TABLES = ("requests", "experiment_events", "dead_letters")


def cli(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=600, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def sql(env, query):
    return [json.loads(line) for line in cli(env, "sql", query, "--format", "json").stdout.splitlines()]


def contents(env, checksum=True):
    """Per table: row count and (with ``checksum``) a sum of row hashes, ingest times left out."""
    out = {}
    for table in TABLES:
        hashed = "sum(cityHash64(* EXCEPT ingest_time))" if table == "requests" else "sum(cityHash64(*))"
        if table == "dead_letters":
            hashed = "sum(cityHash64(* EXCEPT dead_time))"
        [row] = sql(env, f"SELECT count() AS n, {hashed if checksum else '0'} AS h FROM hub.{table}")
        out[table] = (row["n"], row["h"])
    return out


def databases(env):
    return sorted(r["name"] for r in sql(env, "SELECT name FROM system.databases WHERE name LIKE 'hub%'"))


@pytest.fixture(scope="module")
def stopped_hub(tmp_path_factory, kafka_bootstrap):
    """A hub that stored request legs, an experiment's events and a dead letter, then stopped."""
    return _fill_and_stop(tmp_path_factory.mktemp("replay") / "home", kafka_bootstrap)


@pytest.fixture(scope="module")
def stopped_hub_on_a_store_server(tmp_path_factory, kafka_bootstrap):
    """The same, its store a ``hub store serve`` process (HTTP, as ``hub up`` runs it) that stays up."""
    base = tmp_path_factory.mktemp("replay-server")
    with StoreServerProcess.start(base / "store") as server:
        yield _fill_and_stop(base / "home", kafka_bootstrap, HUB_CLICKHOUSE_URL=server.url)


def _fill_and_stop(home, kafka_bootstrap, **overrides):
    worker = WorkerProcess.start(home, kafka_bootstrap, HUB_ACTOR="ana@gameday-room", **overrides)
    env = dict(worker.env)
    try:
        experiment = f"replay-{uuid.uuid4().hex[:6]}"
        definition = home.parent / "experiment.yaml"
        definition.write_text((__import__("hub.settings", fromlist=["REPO_ROOT"]).REPO_ROOT
                               / "examples/experiments/patient-api-db-failover.yaml").read_text()
                              .replace("id: patient-api-db-failover", f"id: {experiment}", 1))
        cli(env, "experiment", "create", str(definition))
        cli(env, "note", experiment, "before the start")
        cli(env, "emit", "--count", "3000")
        bad = home.parent / "bad.jsonl"
        bad.write_text('{"not": "a request leg"}\n')
        cli(env, "emit", "--file", str(bad), "--raw")
        assert worker.wait_for("SELECT count() FROM hub.requests", 3000, timeout=120) == 3000
        assert worker.wait_for("SELECT count() FROM hub.experiment_events", 2, timeout=60) == 2
        assert worker.wait_for("SELECT count() FROM hub.dead_letters", 1, timeout=60) == 1
    finally:
        worker.stop()
    return env, experiment


def test_a_replay_that_runs_out_of_time_leaves_the_database_as_it_was(stopped_hub):
    env, experiment = stopped_hub
    before = contents(env)
    result = cli({**env, "HUB_REPLAY_MAX_SECONDS": "0.001"}, "replay", "--yes", check=False)
    assert result.returncode == 2, result
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hub: error: replay failed, database hub left as it was:"), result.stderr
    assert "not read to its end within HUB_REPLAY_MAX_SECONDS=0.001" in last
    assert contents(env) == before
    assert databases(env) == ["hub"]  # the half-built one is dropped
    assert sql(env, f"SELECT status FROM hub.experiments WHERE experiment_id = '{experiment}'") == [
        {"status": "draft"}]


def test_a_replay_that_completes_swaps_in_a_database_with_the_same_rows(stopped_hub):
    env, experiment = stopped_hub
    before = contents(env)
    result = cli(env, "replay", "--yes")
    assert "swapped: hub is the rebuilt database" in result.stdout
    assert "replayed in" in result.stdout.splitlines()[-1]
    assert contents(env) == before
    assert databases(env) == ["hub"]  # neither the rebuild's name nor the previous database is left
    # The views read the swapped-in tables under the hub's name.
    assert sql(env, f"SELECT status FROM hub.experiments WHERE experiment_id = '{experiment}'") == [
        {"status": "draft"}]
    assert sql(env, f"SELECT text FROM hub.experiment_notes WHERE experiment_id = '{experiment}'") == [
        {"text": "before the start"}]
    views = sql(env, "SELECT name, create_table_query AS ddl FROM system.tables WHERE database = 'hub' "
                     "AND engine IN ('View', 'MaterializedView')")
    assert views and all("_replay_" not in v["ddl"] for v in views), views


@pytest.mark.parametrize("store_kind", ["embedded", "server"])
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_replay_stopped_by_a_signal_drops_its_half_built_database(request, store_kind, signum, status):
    env, experiment = request.getfixturevalue(
        "stopped_hub" if store_kind == "embedded" else "stopped_hub_on_a_store_server")
    before = contents(env)
    # Started as a shell starts a background job: SIGINT ignored. The replay must still stop on it.
    process = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "replay", "--yes"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        said = []
        for line in process.stdout:  # the new database exists and is migrated once the offsets are taken
            said.append(line)
            if line.startswith("end offsets taken"):
                break
        assert said and said[-1].startswith("end offsets taken"), said
        process.send_signal(signum)
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == status, (said, out, err)
    assert "swapped" not in out
    assert f"interrupted ({signal.Signals(signum).name}): dropped hub_replay_" in out, (out, err)
    assert databases(env) == ["hub"]  # no hub_replay_* left
    assert contents(env) == before
    assert sql(env, f"SELECT status FROM hub.experiments WHERE experiment_id = '{experiment}'") == [
        {"status": "draft"}]
