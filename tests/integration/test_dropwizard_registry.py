"""``hub import dropwizard`` against a REAL Dropwizard Metrics 4.2 registry served by its
``MetricsServlet`` on Jetty (tests/integration/dropwizard/DropwizardRegistry.java), imported twice:
every metric of the document it served is stored with its value, attributes, unit and start.

The set-up fetches the jars from Maven Central with Maven into ~/.cache/gameday-hub/dropwizard
(outside the repository; HUB_TEST_DROPWIZARD_CACHE elsewhere) and compiles the registry with javac.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from hub.experiments import lifecycle
from hub.experiments.definition import parse_definition
from hub.experiments.service import ExperimentService, now
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

METRICS_VERSION = "4.2.38"
JETTY_VERSION = "9.4.56.v20240826"
SOURCE = Path(__file__).resolve().parent / "dropwizard" / "DropwizardRegistry.java"
CACHE = Path(os.environ.get("HUB_TEST_DROPWIZARD_CACHE", Path.home() / ".cache" / "gameday-hub" / "dropwizard"))
POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gameday-hub.test</groupId><artifactId>dropwizard-registry</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.dropwizard.metrics</groupId><artifactId>metrics-core</artifactId><version>{METRICS_VERSION}</version></dependency>
    <dependency><groupId>io.dropwizard.metrics</groupId><artifactId>metrics-servlets</artifactId><version>{METRICS_VERSION}</version></dependency>
    <dependency><groupId>io.dropwizard.metrics</groupId><artifactId>metrics-jvm</artifactId><version>{METRICS_VERSION}</version></dependency>
    <dependency><groupId>org.eclipse.jetty</groupId><artifactId>jetty-servlet</artifactId><version>{JETTY_VERSION}</version></dependency>
  </dependencies>
</project>
"""
DEFINITION = """
id: {id}
title: Patients keep counting
scenario: Poll the admin metrics.
hypothesis: The API keeps answering.
expected_outcome: Error rate stays under 5%.
steady_state:
  - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.05}}}}
environment: {{name: staging, kind: non-live, risk: low}}
targets:
  services: [patients]
"""
#: The registry's tag-like names and what they are stored as.
SPLIT = {"http.hits{route=/patients,method=GET}": ("http.hits", {"route": "/patients", "method": "GET"}),
         "kafka.consumer[topic:orders,partition:3]": ("kafka.consumer", {"topic": "orders", "partition": "3"}),
         "http.latency[route=/patients]": ("http.latency", {"route": "/patients"}),
         "kafka.topic=orders.partition=3.lag": ("kafka.lag", {"topic": "orders", "partition": "3"})}
QUANTILES = (("p50", 0.5), ("p75", 0.75), ("p95", 0.95), ("p98", 0.98), ("p99", 0.99), ("p999", 0.999))


def _unavailable(message: str):
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def classpath(tmp_path_factory) -> str:
    for tool in ("java", "javac", "mvn"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed")
    jars = CACHE / f"jars-{METRICS_VERSION}-{JETTY_VERSION}"
    if not (jars / f"metrics-servlets-{METRICS_VERSION}.jar").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "pom.xml").write_text(POM)
        staging = CACHE / f"staging-{uuid.uuid4().hex[:8]}"
        result = subprocess.run(["mvn", "-B", "-q", "-f", str(CACHE / "pom.xml"), "dependency:copy-dependencies",
                                 f"-DoutputDirectory={staging}"], capture_output=True, text=True, timeout=900,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            pytest.fail(f"mvn could not fetch the Dropwizard jars:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        staging.replace(jars)
    classes = tmp_path_factory.mktemp("dropwizard-classes")
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{jars}/*", str(SOURCE)], check=True, timeout=300,
                   stdin=subprocess.DEVNULL)
    return f"{classes}{os.pathsep}{jars}/*"


@pytest.fixture(scope="module")
def registry(classpath):
    process = subprocess.Popen(["java", "-cp", classpath, "DropwizardRegistry"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline().split()
        assert line[:1] == ["PORT"], f"the registry did not start: {line}"
        yield f"http://127.0.0.1:{line[1]}", int(line[3])  # its URL, the JVM's start (epoch ms)
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def worker(tmp_path_factory, kafka_bootstrap):
    process = WorkerProcess.start(tmp_path_factory.mktemp("dropwizard") / "home", kafka_bootstrap)
    try:
        yield process
    finally:
        process.stop()


def hub(worker, *args, check=True):
    result = subprocess.run([sys.executable, "-c", "import sys; from hub.cli.main import main; sys.exit(main())", *args], env=worker.env, capture_output=True,
                            text=True, timeout=180, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return json.loads(body) if url.endswith("/metrics") else body


def expected(doc: dict) -> tuple[dict, dict, dict]:
    """What the document must be stored as: ``{(table kind, name, attributes): value}``, written
    out per Dropwizard kind (gauges, sums, summaries)."""
    gauges, sums, summaries = {}, {}, {}

    def key(name, suffix=""):
        base, tags = SPLIT.get(name, (name, {}))
        return base + suffix, tuple(sorted(tags.items()))

    assert doc["gauges"]["cache.miss.ratio"] == {"value": "NaN"}
    for name, body in doc["gauges"].items():
        if isinstance(body["value"], (int, float)) and name != "jvm.attribute.uptime":
            gauges[key(name)] = body["value"]
    for name, body in doc["counters"].items():
        sums[key(name)] = body["count"]
    for name, body in doc["meters"].items():
        sums[key(name)] = body["count"]
        for rate in ("m1_rate", "m5_rate", "m15_rate", "mean_rate"):
            gauges[key(name, "." + rate)] = body[rate]
    for name, body in list(doc["histograms"].items()) + list(doc["timers"].items()):
        summaries[key(name)] = (body["count"], [(q, body[k]) for k, q in QUANTILES])
        for stat in ("min", "max", "mean", "stddev") + (("m1_rate", "m5_rate", "m15_rate", "mean_rate")
                                                         if "rate_units" in body else ()):
            gauges[key(name, "." + stat)] = body[stat]
    return gauges, sums, summaries


def stored(worker, table: str, service: str, value: str) -> dict:
    rows = worker.sql(f"SELECT toUnixTimestamp64Nano(TimeUnix), MetricName, Attributes, {value}, "
                      f"toUnixTimestamp64Nano(StartTimeUnix) FROM hub.{table} WHERE ServiceName = '{service}' "
                      "ORDER BY TimeUnix")
    out: dict = {}
    for time_ns, name, attributes, v, start in rows:
        out.setdefault(time_ns, {})[(name, tuple(sorted(attributes.items())))] = (v, start)
    return out


def test_two_imports_of_a_real_registry_store_every_metric_with_the_process_start(worker, registry):
    url, jvm_start_ms = registry
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    service = f"patients-{uuid.uuid4().hex[:6]}"
    svc = ExperimentService(worker.settings)
    try:
        svc.create(parse_definition(DEFINITION.format(id=experiment)), "ana")
        svc.command(experiment, lambda s: lifecycle.check_prerequisites(s, [], "ana", now()))
    finally:
        svc.close()
    # an experiment the hub does not know is refused, as by every other command
    refused = hub(worker, "import", "dropwizard", url + "/metrics", "--service", service, "--count", "1",
                  "--experiment", "exp-nobody", check=False)
    assert refused.returncode == 2 and "no experiment 'exp-nobody'" in refused.stderr

    docs = []
    for round_ in range(2):
        if round_:
            get(url + "/step")  # the registry counts on: more hits, the clock 12.5 s on, a counter down
        hub(worker, "import", "dropwizard", url + "/metrics", "--service", service, "--count", "1",
            "--experiment", experiment)
        docs.append(get(url + "/metrics"))  # nothing moves between two fetches but the JVM's uptime
    assert docs[0]["counters"]["bytes.total"]["count"] == 2 ** 53 + 1

    want = [expected(doc) for doc in docs]
    n_gauges, n_sums, n_summaries = (sum(len(w[i]) for w in want) for i in range(3))
    where = f"ServiceName = '{service}' AND ExperimentId = '{experiment}'"
    assert worker.wait_for(f"SELECT count() FROM hub.otel_metrics_summary WHERE {where}", n_summaries, timeout=90) \
        == n_summaries
    assert worker.wait_for(f"SELECT count() FROM hub.otel_metrics_sum WHERE {where}", n_sums, timeout=60) == n_sums
    # the uptime and NaN gauges are stored too, one each per import
    assert worker.wait_for(f"SELECT count() FROM hub.otel_metrics_gauge WHERE {where}", n_gauges + 4, timeout=60) \
        == n_gauges + 4

    gauges = stored(worker, "otel_metrics_gauge", service, "Value")
    sums = stored(worker, "otel_metrics_sum", service, "Value")
    summaries = stored(worker, "otel_metrics_summary", service,
                       "(Count, arrayZip(ValueAtQuantiles.Quantile, ValueAtQuantiles.Value))")
    assert len(gauges) == len(sums) == len(summaries) == 2  # one time per import
    starts = set()
    for (g_time, got_g), (s_time, got_s), (q_time, got_q), (want_g, want_s, want_q) in zip(
            sorted(gauges.items()), sorted(sums.items()), sorted(summaries.items()), want):
        got_g = {k: v for k, (v, _) in got_g.items() if k[0] != "jvm.attribute.uptime"}
        assert math.isnan(float(got_g.pop(("cache.miss.ratio", ()))))  # served as "NaN", stored as NaN
        assert got_g == {k: float(v) for k, v in want_g.items()}
        assert {k: v for k, (v, _) in got_s.items()} == {k: float(v) for k, v in want_s.items()}
        assert {k: (c, [tuple(p) for p in qs]) for k, ((c, qs), _) in got_q.items()} == want_q
        starts |= {start for _, start in got_s.values()} | {start for _, start in got_q.values()}
    # every cumulative series of both imports starts when the JVM started (from its uptime), once
    [start_ns] = starts
    assert abs(start_ns - jvm_start_ms * 1_000_000) < 2_000_000_000
    # the second import continues the first: the counter that went down is a decrease, not a reset
    active = [sums_at[("requests.active", ())][0] for _, sums_at in sorted(sums.items())]
    assert active == [7.0, 5.0]
    # hub status says what is stored, per table
    assert worker.wait_for(f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'", 2) == 2
    status = hub(worker, "status").stdout
    assert (f"stored per table: experiment_events=2 otel_metrics_gauge={n_gauges + 4} otel_metrics_sum={n_sums} "
            f"otel_metrics_summary={n_summaries}") in status  # created and checked, then the metrics


def test_a_registry_that_does_not_answer_is_one_line(worker):
    from hub.testing import free_port

    url = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    gone = hub(worker, "import", "dropwizard", url, "--service", "patients", "--count", "1", check=False)
    assert gone.returncode == 1 and gone.stderr.startswith("hub: cannot reach http://127.0.0.1:")
    assert len(gone.stderr.strip().splitlines()) == 1


TIMER = {"count": 0, "max": 1.0, "mean": 0.5, "min": 0.1, "p50": 0.5, "p75": 0.6, "p95": 0.9, "p98": 0.95, "p99": 0.99,
         "p999": 1.0, "stddev": 0.1, "m15_rate": 1.0, "m1_rate": 1.0, "m5_rate": 1.0, "mean_rate": 1.0,
         "duration_units": "seconds", "rate_units": "calls/second"}


@pytest.fixture
def served():
    """A metrics document served over HTTP as an admin port serves it (set ``document``)."""
    import http.server
    import threading

    state = {"document": b"{}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state["document"])))
            self.end_headers()
            self.wfile.write(state["document"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_a_registry_of_thousands_of_tagged_timers_is_imported_whole(worker, served):
    state, url = served
    n = 3000
    # handler names of letters: the store masks identifier-like path segments in attributes
    handlers = ["".join("abcdefghijklmnopqrstuvwxyz"[i // 26 ** k % 26] for k in range(3)) for i in range(n)]
    timers = {f"http.server.requests{{method=GET,handler={h},status=200}}": dict(TIMER, count=i)
              for i, h in enumerate(handlers)}
    # the document MetricsServlet writes for such a registry, JVM attributes included
    state["document"] = json.dumps({
        "version": "4.0.0", "gauges": {"jvm.attribute.uptime": {"value": 120_000},
                                       "jvm.attribute.name": {"value": "4242@patients-1"}},
        "counters": {}, "histograms": {}, "meters": {}, "timers": timers}).encode()
    service = f"many-{uuid.uuid4().hex[:6]}"
    result = hub(worker, "import", "dropwizard", url, "--service", service, "--count", "1")
    sent = re.search(r"poll 1: (\d+) metrics from \S+ sent to \S+ in (\d+) records", result.stderr)
    assert sent and int(sent.group(1)) == 9 * n + 1 and int(sent.group(2)) > 3, result.stderr
    where = f"ServiceName = '{service}'"
    assert worker.wait_for(f"SELECT count() FROM hub.otel_metrics_summary WHERE {where}", n, timeout=120) == n
    assert worker.wait_for(f"SELECT count() FROM hub.otel_metrics_gauge WHERE {where}", 8 * n + 1, timeout=60) \
        == 8 * n + 1  # min, max, mean, stddev and four rates per timer, and the uptime
    assert worker.sql(f"SELECT sum(Count), uniqExact(Attributes['handler']), uniqExact(StartTimeUnix) "
                      f"FROM hub.otel_metrics_summary WHERE {where}") == [[n * (n - 1) // 2, n, 1]]
