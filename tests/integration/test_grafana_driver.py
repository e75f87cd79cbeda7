"""Grafana's own ClickHouse client reads the embedded store through the endpoint a live worker
serves in embedded mode (what `hub up` starts).

The clients are the real ones, installed from their registries into ~/.cache/gameday-hub (outside
the repository): clickhouse-go v2 over HTTP, opened as Grafana's ClickHouse plugin opens it (a Go
program built from the Go module proxy, ``grafana_driver/main.go``), the official JavaScript
client ``@clickhouse/client`` from npm (``grafana_driver/client.mjs``, run with node), and
clickhouse-connect over HTTP.

The store holds an experiment run (the lifecycle of the example failover experiment, request
legs, spans, alerts, shadow pairs; a second experiment still running), written into the hub's
store before the worker starts. Every panel, annotation and variable query of the generated
dashboards, with the plugin's macros expanded as the plugin expands them (all values and one
value selected), runs through each client, Go with gzip (the plugin's compression over HTTP),
without compression and with LZ4 and ZSTD, as the
read-only datasource user; each must succeed and return exactly the rows the same SQL returns
run directly on the store (the engine opened in-process, before the worker runs). The queries'
clock (``now()``, ``now64(3)``) is replaced by one fixed instant on both sides, so that an open
phase ends at the same time in both answers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from hub.testing import WorkerProcess, free_port

pytestmark = [pytest.mark.clickhouse, pytest.mark.kafka, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("HUB_TEST_CACHE") or "~/.cache/gameday-hub").expanduser()
CLICKHOUSE_GO = "v2.51.0"
JS_CLIENT = "1.23.1"
UTC = dt.timezone.utc
NOW = "2031-01-01 00:00:00"
_NOW_CALL = re.compile(r"\bnow(64)?\s*\(\s*(3)?\s*\)", re.IGNORECASE)


# ---- the clients, from their registries ---------------------------------------------------------
def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 900) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def go_driver() -> Path:
    """The Go program built against clickhouse-go from the Go module proxy (cached)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail("the Go toolchain is needed to build the clickhouse-go program (install Go)")
    root = CACHE / "go"
    work = root / f"grafana-driver-{CLICKHOUSE_GO}"
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOPATH": str(root / "gopath"), "GOMODCACHE": str(root / "gopath" / "pkg" / "mod"),
           "GOCACHE": str(root / "build"), "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local"}
    source = (HERE / "grafana_driver" / "main.go").read_bytes()
    binary = work / "driver"
    if not (work / "main.go").exists() or (work / "main.go").read_bytes() != source or not binary.exists():
        (work / "main.go").write_bytes(source)
        if not (work / "go.mod").exists():
            _run([go, "mod", "init", "gameday-hub/grafana-driver"], work, env)
        _run([go, "get", f"github.com/ClickHouse/clickhouse-go/v2@{CLICKHOUSE_GO}"], work, env)
        _run([go, "mod", "tidy"], work, env)
        _run([go, "build", "-o", str(binary), "."], work, env)
    return binary


@pytest.fixture(scope="module")
def js_client() -> Path:
    """The script beside @clickhouse/client installed from npm (cached)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("Node.js and npm are needed to run @clickhouse/client")
    work = CACHE / "node" / f"clickhouse-client-{JS_CLIENT}"
    work.mkdir(parents=True, exist_ok=True)
    package = work / "node_modules" / "@clickhouse" / "client" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != JS_CLIENT:
        _run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(work), f"@clickhouse/client@{JS_CLIENT}"], work)
    script = work / "client.mjs"
    shutil.copyfile(HERE / "grafana_driver" / "client.mjs", script)
    return script


def run_go(binary: Path, port: int, queries: list[dict], compression: str = "none", user: str = "hub_grafana",
           password: str = "", insert: dict | None = None) -> dict[str, dict]:
    payload = {"addr": f"127.0.0.1:{port}", "user": user, "password": password, "database": "hub",
               "compression": compression, "queries": queries, "insert": insert}
    done = subprocess.run([str(binary)], input=json.dumps(payload), capture_output=True, text=True, timeout=600)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, f"the Go program failed ({done.returncode}): {results[:1]} {done.stderr[-2000:]}"
    return {r["id"]: r for r in results}


def run_js(script: Path, port: int, queries: list[dict], compression: bool) -> dict[str, dict]:
    payload = {"url": f"http://127.0.0.1:{port}", "username": "hub_grafana", "password": "", "database": "hub",
               "compression": compression, "queries": queries}
    done = subprocess.run(["node", str(script)], cwd=script.parent, input=json.dumps(payload), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return {r["id"]: r for r in (json.loads(line) for line in done.stdout.splitlines() if line.strip())}


# ---- values as the Go program writes them ---------------------------------------------------------
def go_value(v):
    """A value of clickhouse-connect's result as the Go program writes clickhouse-go's."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, dt.datetime):
        v = v if v.tzinfo else v.replace(tzinfo=UTC)
        return {"t": (v - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)}
    if isinstance(v, dt.date):
        return go_value(dt.datetime(v.year, v.month, v.day, tzinfo=UTC))
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else v
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, int):
        return v
    if isinstance(v, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [go_value(x) for x in v]
    if isinstance(v, dict):
        return {str(go_value(k)): go_value(x) for k, x in v.items()}
    return str(v)


# ---- the store's data and the direct answers (run in a child process that owns the store) ---------
def freeze_now(sql: str) -> str:
    sql = _NOW_CALL.sub(lambda m: f"toDateTime64('{NOW}', 3, 'UTC')" if m.group(1) else f"toDateTime('{NOW}', 'UTC')",
                        sql)
    assert not re.search(r"\bnow(64)?\s*\(", sql, re.IGNORECASE), sql
    return sql


def fill_and_answer(home: str, out: str, real_definition: str) -> None:
    """Add a second run to the store of ``home`` (which holds the real one of ``real_definition``),
    expand every query of both experiments' dashboards and the overview, and answer each
    directly on the store: clickhouse-connect's rows (as Go values) and the engine's
    JSONCompactEachRowWithNamesAndTypes. Runs in a child process: the store is the embedded
    engine, which one process at a time may open."""
    import chdb

    from dashboards.config import grafana_config
    from dashboards.experiment import experiment_dashboard
    from dashboards.macros import expand
    from dashboards.overview import overview_dashboard
    from hub.experiments.definition import load_definition
    from hub.settings import load_settings
    from hub.storage.client import open_store
    from hub.storage.migrations import migrate
    from tests.integration import test_dashboards_queries as T

    settings = load_settings({"HUB_HOME": home})
    store = open_store(settings)
    migrate(store, settings)
    _fill(T, store)
    T.add_shadow_pairs(store)
    cfg = grafana_config(settings, env={})
    defn = load_definition(T.EXAMPLE)
    dashboards = [experiment_dashboard(defn, cfg, shadow_pairs=True), overview_dashboard(cfg),
                  experiment_dashboard(load_definition(Path(real_definition)), cfg, shadow_pairs=True)]
    raw = chdb.connect(str(settings.clickhouse_path))

    def expanded(sql: str, variables) -> str:
        return freeze_now(expand(sql, time_from=T.at(-1), time_to=T.at(30), interval_s=10, variables=variables))

    queries = []
    for d in dashboards:
        options = {}
        found = T.queries_of(d)
        for kind, name, sql in found:
            if kind == "variable":
                queries.append({"id": f"{d['uid']}/variable/{name}", "sql": expanded(sql, {})})
                options[name] = [r[0] for r in store.query(queries[-1]["sql"]).result_rows]
        for kind, title, sql in found:
            if kind == "variable":
                continue
            queries.append({"id": f"{d['uid']}/{kind}/{title}/all", "sql": expanded(sql, T.all_selected(options))})
            queries.append({"id": f"{d['uid']}/{kind}/{title}/one", "sql": expanded(sql, T.one_selected())})
    answers = {}
    for q in queries:
        result = store.query(q["sql"])
        text = raw.query(q["sql"], "JSONCompactEachRowWithNamesAndTypes").bytes().decode()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        answers[q["id"]] = {"columns": list(result.column_names),
                            "go": [go_value(list(r)) for r in result.result_rows], "json": lines}
    raw.close()
    store.close()
    Path(out).write_text(json.dumps({"queries": queries, "answers": answers}))


def _fill(T, store) -> None:
    import random

    from hub.abort.records import ALERT_COLUMNS
    from hub.experiments.definition import load_definition
    from hub.experiments.events import EVENT_COLUMNS, event_row

    rng = random.Random(7)
    defn = load_definition(T.EXAMPLE)
    events = T.timeline(defn, T.EXP) + T.timeline(defn, T.RUNNING, end=False)
    db = store.database
    store.insert(f"{db}.experiment_events", [event_row(e) for e in events], EVENT_COLUMNS)
    store.insert(f"{db}.requests", T.request_rows(T.EXP, 1, 15, rng) + T.request_rows(T.RUNNING, 1, 29, rng),
                 T.REQUEST_COLUMNS)
    store.insert(f"{db}.otel_traces", T.span_rows(T.EXP, 1, 15, rng), T.TRACE_COLUMNS)
    store.insert(f"{db}.alerts", T.alert_records(T.EXP) + T.alert_records(T.RUNNING), ALERT_COLUMNS)


def real_run(home: Path, kafka_bootstrap: str, definition: Path) -> None:
    """An experiment run through a live worker: created, started, phases, a fault injected and
    removed, a surprise, completed, with request legs through its gateway sent to Kafka."""
    from hub.producer import send_records
    from tests.integration.test_experiment_run import DEFINITION, Cli, legs

    experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
    definition.write_text(DEFINITION.format(id=experiment, gateway=gateway))
    worker = WorkerProcess.start(home, kafka_bootstrap, HUB_STORE_PORT=str(free_port()))
    cli = Cli(dict(worker.env))
    try:
        def send(records):
            send_records(kafka_bootstrap, worker.settings.topic_requests, records)

        cli("experiment", "create", str(definition))
        cli("experiment", "check", experiment, "--all-done")
        cli("experiment", "start", experiment)
        send(legs(gateway, 100, errors=2))
        cli("experiment", "phase", experiment, "injection")
        cli("experiment", "inject", experiment, "--action", "add-latency", "--target", "patients-db",
            "--param", "latency_ms=300", "--fault-id", "slow-db")
        send(legs(gateway, 100, errors=30))
        cli("experiment", "remove", experiment, "slow-db")
        cli("experiment", "phase", experiment, "recovery")
        worker.wait_for(f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'", 200, timeout=120)
        cli("note", experiment, "retries hid most errors", "--surprise", "--expected", "<5% errors",
            "--actual", "30% errors during injection")
        cli("experiment", "complete", experiment, "--summary", "timeouts too long")
        worker.wait_for(f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'", 9,
                        timeout=60)
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, kafka_bootstrap):
    """A live worker in embedded mode over the store of a real run (plus a second run written into
    it), serving its ClickHouse endpoint; yields (worker, port, queries, direct answers)."""
    home = tmp_path_factory.mktemp("grafana-endpoint") / "home"
    definition = home.parent / "experiment.yaml"
    real_run(home, kafka_bootstrap, definition)
    out = home.parent / "answers.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    done = subprocess.run([sys.executable, "-c", "import sys; from tests.integration.test_grafana_driver import "
                           "fill_and_answer; fill_and_answer(*sys.argv[1:])", str(home), str(out), str(definition)],
                          cwd=HERE.parents[1], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(out.read_text())
    port = free_port()
    worker = WorkerProcess.start(home, kafka_bootstrap, HUB_STORE_PORT=str(port))
    try:
        yield worker, port, data["queries"], data["answers"]
    finally:
        worker.stop()


# ---- the tests ----------------------------------------------------------------------------------
def _check(results: dict[str, dict], answers: dict[str, dict], client: str) -> None:
    assert set(results) == set(answers), client
    failed = {qid: r["error"] for qid, r in results.items() if r.get("error")}
    assert not failed, f"{client}: {len(failed)} of {len(results)} queries failed: {failed}"
    for qid, r in results.items():
        assert r["columns"] == answers[qid]["columns"], f"{client} {qid}"
        assert r["rows"] == answers[qid]["go"], f"{client} {qid}: rows differ from the store's"


# gzip is the plugin's own over HTTP (CompressionGZIP); LZ4 and ZSTD are clickhouse-go's block compression.
@pytest.mark.parametrize("compression", ["gzip", "none", "lz4", "zstd"])
def test_clickhouse_go_runs_every_dashboard_query_with_the_stores_answers(endpoint, go_driver, compression):
    _, port, queries, answers = endpoint
    assert len(queries) >= 40 and any(a["go"] for a in answers.values())
    results = run_go(go_driver, port, queries, compression)
    _check(results, answers, f"clickhouse-go ({compression})")
    # The driver's types are the engine's (as its JSON formats name them), DateTime's time zone included.
    # (An empty result is an empty body, as a server sends it in Native: no columns.)
    for qid, r in results.items():
        if r["columns"]:
            assert r["types"] == answers[qid]["json"][1], qid


def test_clickhouse_connect_and_the_javascript_client_get_the_same_answers(endpoint, js_client):
    import clickhouse_connect

    _, port, queries, answers = endpoint
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="hub_grafana", password="",
                                           database="hub", compress=True)
    try:
        results = {}
        for q in queries:
            result = client.query(q["sql"])
            results[q["id"]] = {"columns": list(result.column_names),
                                "rows": [go_value(list(r)) for r in result.result_rows]}
    finally:
        client.close()
    _check(results, answers, "clickhouse-connect")
    for compression in (False, True):
        js = run_js(js_client, port, queries, compression)
        failed = {qid: r["error"] for qid, r in js.items() if r.get("error")}
        assert not failed, f"@clickhouse/client: {failed}"
        for qid, r in js.items():
            assert r["meta"] + r["rows"] == answers[qid]["json"], f"@clickhouse/client ({compression}) {qid}"


def test_the_datasource_user_can_only_read(endpoint, go_driver):
    worker, port, _, _ = endpoint
    statements = {
        "insert": "INSERT INTO hub.requests (route) VALUES ('/written')",
        "create": "CREATE TABLE hub.grafana_made (x UInt8) ENGINE = MergeTree ORDER BY x",
        "drop": "DROP TABLE hub.requests",
        "alter": "ALTER TABLE hub.requests DELETE WHERE 1",
        "file": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "url": "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "set": "SET readonly = 0",
    }
    before = run_go(go_driver, port, [{"id": "count", "sql": "SELECT count() FROM hub.requests"}])["count"]["rows"]
    for compression in ("none", "lz4"):
        results = run_go(go_driver, port, [{"id": k, "sql": v} for k, v in statements.items()], compression)
        for name in ("insert", "create", "drop", "alter", "set"):
            assert "code: 164" in results[name]["error"] and "READONLY" in results[name]["error"], results[name]
        for name in ("file", "url"):
            assert "code: 497" in results[name]["error"] and "ACCESS_DENIED" in results[name]["error"], results[name]
    after = run_go(go_driver, port, [{"id": "count", "sql": "SELECT count() FROM hub.requests"},
                                     {"id": "made", "sql": "EXISTS TABLE hub.grafana_made"}])
    assert after["count"]["rows"] == before and before[0][0] > 0
    assert after["made"]["rows"] == [[0]]
    # Another user, or the datasource's user with a password it does not have, is refused.
    for user, password in (("someone", ""), ("hub_grafana", "guess")):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/?query=SELECT%201",
                                         headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password})
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(request, timeout=30)
        assert denied.value.headers["X-ClickHouse-Exception-Code"] == "516"


@pytest.mark.parametrize("command", [["up"], ["store", "serve"]])
def test_off_loopback_the_datasource_user_needs_a_password(tmp_path, command):
    """Off loopback (checked before anything listens), `hub up` and `hub store serve` refuse to
    serve the store with the read-only user's password empty, even with the token set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_HOME": str(tmp_path / "home"), "HUB_STORE_HOST": "0.0.0.0", "HUB_STORE_TOKEN": "s3cret",
                "HUB_STORE_PORT": str(free_port()), "HUB_KAFKA_BOOTSTRAP": "127.0.0.1:9"})
    done = subprocess.run([sys.executable, "-m", "hub.cli.main", *command], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "HUB_GRAFANA_CLICKHOUSE_PASSWORD" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_clickhouse_go_writes_batches_in_compressed_blocks(endpoint, go_driver):
    """The token's holder writes with the driver's batches over HTTP: the blocks in ClickHouse's
    compressed format (decompress=1), checksums verified; the datasource user may not."""
    import clickhouse_connect

    worker, port, _, _ = endpoint
    token = (worker.settings.home / "store-token").read_text().strip()
    admin = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="default", password=token)
    try:
        db = f"scratch_{uuid.uuid4().hex[:8]}"
        admin.command(f"CREATE DATABASE {db}")
        admin.command(f"CREATE TABLE {db}.batch (id UInt64, s String, t DateTime64(3, 'UTC')) "
                      "ENGINE = MergeTree ORDER BY id")
        for compression in ("lz4", "zstd", "none"):
            done = run_go(go_driver, port, [], compression, user="default", password=token,
                          insert={"table": f"{db}.batch", "rows": 5000})
            assert "error" not in done["insert"], done
        assert admin.query(f"SELECT count(), sum(id), uniqExact(s), max(t) FROM {db}.batch").result_rows == [
            (15_000, 3 * 4999 * 5000 // 2, 5000, dt.datetime(1970, 1, 1, 0, 0, 4, 999000))]
        refused = run_go(go_driver, port, [], "lz4", insert={"table": f"{db}.batch", "rows": 10})
        assert "READONLY" in refused["insert"]["error"], refused
        # A block whose checksum does not match is refused whole.
        from hub.storage import compression

        packed = bytearray(compression.compress(b"1\tx\t0\n" * 10))
        packed[-1] ^= 0xFF
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/?decompress=1&query=" + urllib.request.quote(f"INSERT INTO {db}.batch FORMAT TSV"),
            data=bytes(packed), headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": token})
        with pytest.raises(urllib.error.HTTPError) as corrupted:
            urllib.request.urlopen(request, timeout=30)
        assert corrupted.value.headers["X-ClickHouse-Exception-Code"] == "40"
        assert admin.query(f"SELECT count() FROM {db}.batch").result_rows == [(15_000,)]
    finally:
        admin.close()
