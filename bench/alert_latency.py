"""Breach-to-alert latency: from the publication of the first breaching record to the alert on ``hub.alerts``.

One worker (``hub.testing.WorkerProcess``: a real ``python -m streams.worker``, its own
HUB_HOME, embedded chDB store, isolated topics) and one running experiment whose gateway is
the traffic's, with one abort rule (``error_rate > 5%`` over 2 s, at least 500 samples,
severity ``warn`` so the experiment keeps running and every trial fires a new alert).

A producer thread publishes request legs at a steady rate (default 10,000 per second) as the
hub's emitter SDK does by default: CloudEvents batches of 100 events per Kafka record, one record every 10 ms,
keyed by correlation id round-robin over the partitions, event time = the moment of sending.
Each trial switches the traffic to failing (status 503) for 0.4 s, then back to healthy for
long enough that the rule resolves.

The first breaching record is computed from what was sent, with the judge's own window
semantics: per event-time second, counts and errors of the records published so far; the
window at the newest second S covers the seconds (S-2, S]; the first record after which the
window's error rate exceeds the threshold with enough samples is the breaching one. Its
publication instant is taken just before ``send``. The alert's instant is the Kafka
timestamp of the firing alert record on the alerts topic (set by the worker's producer, same
clock). latency = alert instant - publication instant.

Baseline, in the same run, on the same records and breaches: ``bench.alert_baseline`` in its
own process, a plain kafka-python consumer that decodes each record and evaluates the same
rule in memory, with no storage, no experiment correlation and no exactly-once bookkeeping,
and publishes its alert to a topic of its own. Its latency is measured the same way: it is
the floor that Kafka's hops and decoding set.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import orjson

from bench.common import BenchContext, BenchError, Result
from hub.runtime.kafka import tail
from hub.runtime.topics import ensure_topics
from hub.settings import REPO_ROOT
from hub.stats import percentile
from hub.testing import WorkerProcess, isolated_env

RATE = 10_000          # request legs per second
EVENTS_PER_RECORD = 100  # the hub's emitter SDK packs up to 100 events per Kafka record by default
WINDOW = 2             # seconds, the rule's window
THRESHOLD = 0.05
MIN_SAMPLES = 500
FAIL_SECONDS = 0.4
QUIET_SECONDS = 3.6    # healthy traffic between breaches: the window empties of errors, the rule resolves
DEFAULT_TRIALS = 30
WARM_UP = 10           # seconds of healthy traffic first: the worker's start-up catch-up is not measured
PARTITIONS = 4

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Breach-to-alert latency benchmark
    scenario: Steady traffic with bursts of failures.
    hypothesis: Every burst raises one alert.
    expected_outcome: One alert per burst.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.5}}}}
    environment: {{name: bench, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}]}}
    phases: [{{name: load, planned_minutes: 30}}]
    abort_conditions:
      - {{name: burst-errors, measurement: error_rate, window: {window}s, comparison: ">", threshold: {threshold},
          min_samples: {min_samples}, severity: warn}}
""")


def _template(gateway: str) -> tuple[bytes, bytes]:
    """A request-leg CloudEvent with placeholders, for 10,000 a second without per-event encoding."""
    def one(status: int) -> bytes:
        return orjson.dumps({
            "specversion": "1.0", "id": "@ID@", "source": "/bench/alert-latency",
            "type": "dev.gamedayhub.request.leg.v1", "datacontenttype": "application/json",
            "data": {"correlation_id": "@ID@", "leg": "primary", "gateway": gateway, "route": "/checkout",
                     "method": "GET", "backend": "checkout-v1", "status": status, "latency_ms": 12.5,
                     "event_time": "@TIME@"}})
    return one(200), one(503)


class Traffic(threading.Thread):
    """Paced producer; records (publication instant, event second, events, errors) of each record."""

    def __init__(self, bootstrap: str, topic: str, gateway: str, rate: int):
        super().__init__(name="bench-traffic", daemon=True)
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0, max_request_size=10_000_000)
        self.topic = topic
        self.ok, self.bad = _template(gateway)
        self.rate = rate
        self.interval = EVENTS_PER_RECORD / rate
        self.failing = False
        self.stop_flag = threading.Event()
        self.sent: list[tuple[float, int, int, int]] = []
        self.lag = 0.0  # worst lateness of the pacing, seconds

    def run(self) -> None:
        n = 0
        next_at = time.time()
        while not self.stop_flag.is_set():
            now = time.time()
            if now < next_at:
                time.sleep(next_at - now)
                now = time.time()
            self.lag = max(self.lag, now - next_at)
            next_at += self.interval
            failing = self.failing
            template = self.bad if failing else self.ok
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
            stamp_b = stamp.encode()
            events = []
            for _ in range(EVENTS_PER_RECORD):
                n += 1
                events.append(template.replace(b"@ID@", f"{n:032x}".encode()).replace(b"@TIME@", stamp_b))
            value = b"[" + b",".join(events) + b"]"
            published = time.time()
            self.producer.send(self.topic, key=f"{n:032x}".encode(), value=value)
            self.sent.append((published, int(now), EVENTS_PER_RECORD, EVENTS_PER_RECORD if failing else 0))
        self.producer.flush(30)
        self.producer.close(10)


def first_breaches(sent: list[tuple[float, int, int, int]]) -> list[float]:
    """Publication instants of the records that start each breach, by the judge's window semantics."""
    per_second: dict[int, list[int]] = {}
    watermark = 0
    breaching = False
    out = []
    for published, second, count, errors in sent:
        cell = per_second.setdefault(second, [0, 0])
        cell[0] += count
        cell[1] += errors
        watermark = max(watermark, second)
        n = e = 0
        for s in range(watermark - WINDOW + 1, watermark + 1):
            c = per_second.get(s)
            if c:
                n += c[0]
                e += c[1]
        now_breaching = n >= MIN_SAMPLES and e / n > THRESHOLD
        if now_breaching and not breaching:
            out.append(published)
        breaching = now_breaching
    return out


class AlertReader(threading.Thread):
    """Kafka timestamps (seconds) of firing alerts on a topic, in order."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(name=f"alerts-{topic}", daemon=True)
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
        self.firing: list[float] = []
        self.seen: list[dict] = []  # every alert record, for the details
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                for r in records:
                    try:
                        doc = json.loads(r.value)
                    except ValueError:
                        continue
                    if doc.get("kind") != "alert":
                        continue
                    self.seen.append({"at": r.timestamp / 1000, "status": doc.get("status"),
                                      "alert_id": doc.get("alert_id"), "observed": doc.get("observed"),
                                      "samples": doc.get("samples"), "window_end": doc.get("window_end")})
                    if doc.get("status") == "firing":
                        self.firing.append(r.timestamp / 1000)
        self.consumer.close()


def _match(breaches: list[float], alerts: list[float]) -> list[float]:
    """Latency of each breach. With one firing alert per breach, the n-th alert answers the n-th
    breach (an alert may come after the next breach was published, when the judge lags);
    otherwise each breach's first alert at or after it and before the next breach."""
    if len(alerts) == len(breaches):
        late = [(b, a) for b, a in zip(breaches, alerts) if a < b]
        if late:
            raise BenchError(f"alerts before their breach: {late}")
        return [a - b for b, a in zip(breaches, alerts)]
    out = []
    for i, start in enumerate(breaches):
        end = breaches[i + 1] if i + 1 < len(breaches) else math.inf
        found = [a for a in alerts if start <= a < end]
        if not found:
            raise BenchError(f"breach {i + 1} (published at {start:.3f}) raised no alert; alerts at {alerts}")
        out.append(found[0] - start)
    return out


def _cli(env: dict, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise BenchError(f"hub {' '.join(args)} failed: {result.stderr.strip()}")


def _drive(ctx: BenchContext, label: str, traffic: Traffic, trials: int, reader: AlertReader,
           check=lambda: None, stored=lambda: None) -> list[float]:
    """Warm up, send ``trials`` bursts, stop the traffic; the breaches' publication instants."""
    traffic.start()
    ctx.progress(f"alert latency ({label}): {traffic.rate:,} legs/s; warming up for {WARM_UP}s, then {trials} "
                 f"breaches of {FAIL_SECONDS}s every {FAIL_SECONDS + QUIET_SECONDS}s")
    time.sleep(WARM_UP)
    for i in range(trials):
        check()
        traffic.failing = True
        time.sleep(FAIL_SECONDS)
        traffic.failing = False
        time.sleep(QUIET_SECONDS)
        if (i + 1) % 5 == 0:
            sent = sum(s[2] for s in traffic.sent)
            n = stored()
            ctx.progress(f"alert latency ({label}): {i + 1}/{trials} breaches; firing alerts so far "
                         f"{len(reader.firing)}; legs sent {sent:,}" + (f", stored {n:,}" if n is not None else ""))
    traffic.stop_flag.set()
    traffic.join(30)
    time.sleep(3)
    reader.stop_flag.set()
    reader.join(10)
    breaches = first_breaches(traffic.sent)
    if len(breaches) != trials:
        raise BenchError(f"{trials} bursts sent but {len(breaches)} breaches in what was sent")
    return breaches


def _stop(traffic: Traffic | None, reader: AlertReader | None) -> None:
    """Stop a pass's traffic and alert reader, whatever state it ended in."""
    if traffic is not None and traffic.is_alive():
        traffic.stop_flag.set()
        traffic.join(30)
    if reader is not None:
        reader.stop_flag.set()


def _hub_pass(ctx: BenchContext, home, trials: int, rate: int) -> tuple[list[float], dict]:
    env = isolated_env(home, ctx.bootstrap)
    topic = env["HUB_TOPIC_REQUESTS"]
    ensure_topics(ctx.bootstrap, {topic: PARTITIONS})
    worker = WorkerProcess(env)
    traffic = None
    reader = None
    try:
        ctx.progress(f"alert latency (hub): launching the worker (HUB_HOME={home})")
        worker.launch()
        experiment, gateway = f"bench-{uuid.uuid4().hex[:8]}", f"gw-{uuid.uuid4().hex[:8]}"
        path = home / "experiment.yaml"
        path.write_text(DEFINITION.format(id=experiment, gateway=gateway, window=WINDOW, threshold=THRESHOLD,
                                          min_samples=MIN_SAMPLES))
        _cli(env, "experiment", "create", str(path))
        _cli(env, "experiment", "start", experiment, "--force")
        reader = AlertReader(ctx.bootstrap, env["HUB_TOPIC_ALERTS"])
        reader.start()
        traffic = Traffic(ctx.bootstrap, topic, gateway, rate)

        def check() -> None:
            if worker.process.poll() is not None:
                raise BenchError(f"the worker exited with {worker.process.returncode}:\n{tail(worker.log_path, 40)}")

        def stored() -> int:
            return worker.stack.api("/v1/status", timeout=10).get("sink", {}).get("requests", {}).get("stored", 0)

        breaches = _drive(ctx, "hub", traffic, trials, reader, check, stored)
        alerts = reader.firing
        if len(alerts) != trials:
            raise BenchError(f"the hub raised {len(alerts)} firing alerts for {trials} breaches: "
                             f"breaches published at {[round(b, 3) for b in breaches]}, alerts {reader.seen}")
        try:
            latency = _match(breaches, alerts)
        except BenchError as exc:
            raise BenchError(f"{exc}; breaches published at {[round(b, 3) for b in breaches]}; hub alert records "
                             f"{reader.seen}") from None
        sink = worker.stack.api("/v1/status", timeout=10).get("sink", {}).get("requests", {})
        ctx.progress(f"alert latency (hub): the requests sink's batches {sink.get('batches')}, seconds per step "
                     f"{sink.get('phase_seconds')}")
        sent_events = sum(s[2] for s in traffic.sent)
        seconds = traffic.sent[-1][0] - traffic.sent[0][0]
        details = {"hub_requests_sink": sink, "rate_achieved": round(sent_events / seconds),
                   "pacing_worst_lag_s": round(traffic.lag, 4), "hub_alerts": len(alerts), "breaches_published_at": [round(b, 3) for b in breaches],
                   "hub_alert_records": reader.seen, "hub_latency_s": [round(x, 4) for x in latency]}
        return latency, details
    finally:
        _stop(traffic, reader)
        worker.stop()


def _baseline_pass(ctx: BenchContext, trials: int, rate: int) -> tuple[list[float], dict]:
    suffix = uuid.uuid4().hex[:8]
    topic, alerts = f"bench-baseline-requests-{suffix}", f"bench-baseline-alerts-{suffix}"
    ensure_topics(ctx.bootstrap, {topic: PARTITIONS, alerts: 1})
    baseline = subprocess.Popen(
        [sys.executable, "-m", "bench.alert_baseline", "--bootstrap", ctx.bootstrap, "--topic", topic,
         "--alerts", alerts, "--window", str(WINDOW), "--threshold", str(THRESHOLD),
         "--min-samples", str(MIN_SAMPLES)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=REPO_ROOT, text=True)
    traffic = None
    reader = None
    try:
        if baseline.stdout.readline().strip() != "ready":
            raise BenchError("the baseline judge did not start")
        reader = AlertReader(ctx.bootstrap, alerts)
        reader.start()
        traffic = Traffic(ctx.bootstrap, topic, "gw-baseline", rate)

        def check() -> None:
            if baseline.poll() is not None:
                raise BenchError(f"the baseline judge exited with {baseline.returncode}")

        breaches = _drive(ctx, "baseline", traffic, trials, reader, check)
        latency = _match(breaches, reader.firing)
        return latency, {"baseline_alerts": len(reader.firing), "baseline_latency_s": [round(x, 4) for x in latency]}
    finally:
        _stop(traffic, reader)
        if baseline.poll() is None:
            baseline.terminate()
            try:
                baseline.wait(10)
            except subprocess.TimeoutExpired:
                baseline.kill()


def run(ctx: BenchContext, trials: int | None = None, rate: int | None = None) -> list[Result]:
    trials = trials or (max(3, ctx.events // 1000) if ctx.events else DEFAULT_TRIALS)
    rate = rate or ctx.sizes.get("alert_rate") or RATE  # --events sets the trials, not the rate
    # The two judges run one after the other on the same schedule of traffic and bursts, each with
    # the machine to itself (besides the broker and the load generator).
    hub_latency, hub_details = _hub_pass(ctx, ctx.scratch / "alert-latency", trials, rate)
    base_latency, base_details = _baseline_pass(ctx, trials, rate)
    details = {"trials": trials, "rate_target": rate, "events_per_record": EVENTS_PER_RECORD,
               "rule": f"error_rate > {THRESHOLD} over {WINDOW}s, min_samples {MIN_SAMPLES}",
               **hub_details, **base_details}
    hub_median, base_median = statistics.median(hub_latency), statistics.median(base_latency)
    hub_p99, base_p99 = percentile(hub_latency, 0.99), percentile(base_latency, 0.99)
    ctx.progress(f"alert latency: hub median {hub_median:.3f}s p99 {hub_p99:.3f}s; "
                 f"baseline median {base_median:.3f}s p99 {base_p99:.3f}s")
    at = f"{rate:,} legs/s"
    return [Result(f"breach to alert at {at}, median", round(hub_median, 4), "s", round(base_median, 4),
                   higher_is_better=False, details=details),
            Result(f"breach to alert at {at}, p99", round(hub_p99, 4), "s", round(base_p99, 4),
                   higher_is_better=False, details={"same run as": f"breach to alert at {at}, median"})]


def benchmarks():
    return [("alert-latency", f"breach to alert at {RATE:,} request legs/s ({DEFAULT_TRIALS} breaches by default)",
             run)]
