"""The latency the gateway adds per request, side by side in one run: the same requests directly to
a backend, through a plain ``hub gateway`` process, and through a shadowing one.

Processes, each started on a free loopback port (port 0, the bound port read from its first line):

- **backends** (``python -m bench.gateway_latency backend``): aiohttp servers answering every
  request after a fixed service time (``SERVICE_MS``, 2 ms, an ``asyncio.sleep``) with a small
  JSON body (about 110 bytes): the primary, and a second one as the shadow backend.
- **gateways**: ``hub gateway --config <generated yaml>`` (run as ``python -m hub.cli.main``, so
  on uvloop and with the gateway's own backend client, as in production),
  one route ``/patients/{id}`` to the primary, emitting as in production: request legs and
  shadow pairs to the run's broker (``ctx.bootstrap``) on fresh topics of 4 partitions. Two of
  them, running at once:

  - ``plain``: plain proxying;
  - ``shadow``: the route also shadows 50% of its GETs (every request here is a GET) to the
    shadow backend, behind the bulkhead (``max_concurrent: 8, max_queue: 64``, the defaults); the
    gateway compares the bodies and emits a pair per shadowed request.

- **load client** (``python -m bench.gateway_latency client``): aiohttp, keep-alive (one session
  per side, at most ``concurrency`` connections each), ``concurrency`` requests in flight (closed
  loop). It warms every side up (``WARM_UP`` requests each, not counted), then sends N requests
  to each side (direct, plain, shadow) in short runs, in the order ``direct plain shadow`` then
  its reverse, and so on, so load on the shared machine lands on every side alike. Latency of
  one request: from just before ``session.get`` until its body is read. requests/s of a side:
  its requests / the summed wall time of its runs.

Two benchmark keys: ``gateway`` (the machine as it is) and ``gateway-cpu-hog`` (the same, with a
CPU hog beside the gateways: one process spinning on one core, ``os.sched_setaffinity`` to core 0,
for the client runs only). Per key, concurrency 4 then 1, one client run each, with the same
processes. Rows: the plain gateway's p50/p90/p99 against direct, the shadowing gateway's
against the plain one (its primary path within a few percent of plain is the goal), and
requests/s of each. After the runs the gateways are stopped with SIGINT (they flush their
emitters) and the legs and pairs on their topics are counted against what was sent (details
``emitted``). The gateways' CPU time per request (``/proc/<pid>/stat``, all threads) is in the
details. Nothing is asserted about time.

Before and after a change: with ``GATEWAY_BENCH_BEFORE=DIR`` (another source tree of the hub,
e.g. ``git archive`` of an earlier commit unpacked in DIR) two more gateways run that tree's code
(``plain-before``, ``shadow-before``: same configuration, same venv, started at the same moment),
and the client alternates all five sides, so the rows ``after/before`` compare the two versions
under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchContext, BenchError, Result, run_json_child
from hub.runtime.kafka import tail
from hub.runtime.topics import ensure_topics
from hub.settings import REPO_ROOT
from hub.stats import percentile

SERVICE_MS = 2.0           # the backend's fixed service time per request
DEFAULT_REQUESTS = 10_000  # per side (direct, gateway) and per concurrency
CONCURRENCIES = (4, 1)
SHADOW_PERCENT = 50
BULKHEAD = {"max_concurrent": 8, "max_queue": 64}
WARM_UP = 200              # requests per side before measuring, not counted
PARTITIONS = 4
RUNS_PER_SIDE = 40         # short runs per side: N / 40 requests each, within [25, 250]
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
ROUTE = "/patients/{id}"


@dataclass(frozen=True)
class Setup:
    key: str
    label: str
    hog: bool  # a CPU hog on one core beside the gateways during the client runs


SETUPS = (
    Setup("gateway", "quiet", False),
    Setup("gateway-cpu-hog", "CPU hog on one core", True),
)
SIDES = ("direct", "plain", "shadow")
BEFORE_SIDES = ("plain-before", "shadow-before")
BEFORE_ENV = "GATEWAY_BENCH_BEFORE"  # a source tree whose gateway runs beside this one


# ---- statistics ---------------------------------------------------------------------------------
def summary(latencies: list[float], seconds: float) -> dict:
    return {"requests": len(latencies), "seconds": round(seconds, 3),
            "requests_per_second": round(len(latencies) / seconds, 1),
            **{name: round(percentile(latencies, q), 3) for name, q in PERCENTILES},
            "p99.9": round(percentile(latencies, 0.999), 3), "mean": round(statistics.fmean(latencies), 3),
            "min": round(min(latencies), 3), "max": round(max(latencies), 3)}


# ---- child: the backend -------------------------------------------------------------------------
def serve_backend(service_ms: float) -> None:
    from aiohttp import web

    service_s = service_ms / 1000

    async def handle(request: web.Request) -> web.Response:
        if service_s:
            await asyncio.sleep(service_s)
        if request.can_read_body:
            await request.read()
        item = request.path.rsplit("/", 1)[-1]
        body = json.dumps({"id": item, "kind": "patients", "status": "active", "ward": "B-2",
                           "lines": [{"sku": f"s{item}", "qty": 2}], "total": 100}, separators=(",", ":"))
        return web.Response(text=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"listening {site._server.sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


# ---- child: the load client ---------------------------------------------------------------------
async def drive(bases: dict[str, str], requests: int, concurrency: int, round_size: int, warm_up: int,
                label: str) -> dict:
    import aiohttp

    sides = list(bases)
    latencies: dict[str, list[float]] = {side: [] for side in sides}
    seconds = {side: 0.0 for side in sides}
    run_p50: dict[str, list[float]] = {side: [] for side in sides}
    ids = itertools.count()
    sessions = {side: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                            timeout=aiohttp.ClientTimeout(total=30))
                for side in sides}

    async def run(side: str, count: int, record: bool) -> None:
        session, base = sessions[side], bases[side]
        left = [count]
        out: list[float] = []

        async def one_client() -> None:
            while left[0] > 0:
                left[0] -= 1
                url = f"{base}/patients/{next(ids)}"
                started = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    status = resp.status
                out.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise RuntimeError(f"{side}: GET {url} answered {status}")

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        if record:
            seconds[side] += time.perf_counter() - began
            latencies[side].extend(out)
            run_p50[side].append(round(statistics.median(out), 3))

    try:
        for side in sides:
            await run(side, warm_up, False)
        blocks = -(-requests // (2 * round_size))
        last = time.monotonic()
        for b in range(blocks):
            order = sides + sides[::-1] if b % 2 == 0 else sides[::-1] + sides
            for side in order:
                count = min(round_size, requests - len(latencies[side]))
                if count > 0:
                    await run(side, count, True)
            now = time.monotonic()
            if now - last >= 5 or b == blocks - 1:
                last = now
                so_far = ", ".join(f"{side} {statistics.median(latencies[side]):.2f} ms" for side in sides)
                print(f"[gateway] {label}: {len(latencies[sides[0]]):,}/{requests:,} requests per side; "
                      f"p50 so far {so_far}", file=sys.stderr, flush=True)
    finally:
        for session in sessions.values():
            await session.close()
    return {side: {"latencies_ms": [round(x, 4) for x in latencies[side]], "seconds": seconds[side],
                   "run_p50_ms": run_p50[side]} for side in sides} | {
        "round_size": round_size, "blocks": blocks, "warm_up": warm_up}


def hog(seconds: float) -> None:
    """Spin on core 0 for ``seconds`` (a bounded CPU hog beside the gateways)."""
    try:
        os.sched_setaffinity(0, {0})
    except (AttributeError, OSError):
        pass
    print("hogging", flush=True)
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for _ in range(10_000):
            x += 1


# ---- the parent: processes ----------------------------------------------------------------------
class Children:
    """Every process the benchmark starts; ``stop_all`` ends each of them (SIGINT to the gateway, so
    that it flushes its emitters, SIGTERM to the others, SIGKILL after a grace period)."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen, int]] = []

    def start(self, name: str, cmd: list[str], log: Path, env: dict | None = None,
              stop_signal: int = signal.SIGTERM, cwd: str | None = None) -> subprocess.Popen:
        # A child inherits an ignored SIGINT (a run started in the background by a shell ignores it),
        # and then the gateway could not be stopped with it: let the child start with the default.
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        if ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with open(log, "ab") as fh:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=fh, stdin=subprocess.DEVNULL,
                                        cwd=cwd or REPO_ROOT, env=env, text=True)
        finally:
            if ignored:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.procs.append((name, proc, stop_signal))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 30.0) -> int | None:
        """Stop one process; its exit status, or None when it had to be killed."""
        sig = next((s for _, p, s in self.procs if p is proc), signal.SIGTERM)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                return None
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def stop_all(self) -> None:
        for _, proc, sig in self.procs:
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
        for _, proc, _ in self.procs:
            self.stop(proc, timeout=15)


def first_line(proc: subprocess.Popen, what: str, log: Path, timeout: float = 60.0) -> str:
    """The first stdout line of a child that announces its address, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(min(0.5, max(0.0, deadline - time.monotonic()))):
                line = proc.stdout.readline()
                if line:
                    return line.strip()
            if proc.poll() is not None:
                raise BenchError(f"{what} exited with {proc.returncode} before it listened:\n{tail(log, 30)}")
    raise BenchError(f"{what} did not listen within {timeout:.0f}s:\n{tail(log, 30)}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads) from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config_yaml(name: str, port_url: str, shadow_url: str | None, percent: int, bootstrap: str,
                legs_topic: str, pairs_topic: str) -> str:
    backends = {"primary": {"url": port_url}}
    route: dict = {"path": ROUTE, "backend": "primary"}
    if shadow_url:
        backends["shadow"] = {"url": shadow_url}
        route["shadow"] = {"backend": "shadow", "percent": percent}
    doc = {"gateway": {"name": name, "listen": "127.0.0.1:0"}, "backends": backends, "routes": [route],
           "bulkhead": BULKHEAD,
           "emit": {"bootstrap": bootstrap, "requests_topic": legs_topic, "pairs_topic": pairs_topic}}
    import yaml
    return yaml.safe_dump(doc, sort_keys=False)


def warm_through(host: str, port: int, count: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        for i in range(count):
            conn.request("GET", f"/patients/warm-{i}")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise BenchError(f"a warm-up request through the gateway answered {resp.status}")
    finally:
        conn.close()


def _consumer(bootstrap: str, topic: str):
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    deadline = time.monotonic() + 30
    parts = consumer.partitions_for_topic(topic)
    while not parts and time.monotonic() < deadline:
        consumer.topics()
        time.sleep(0.2)
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        consumer.close()
        raise BenchError(f"topic {topic} has no partitions on {bootstrap}")
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    return consumer, tps


def wait_for_records(bootstrap: str, topic: str, timeout: float = 30.0) -> float:
    """Seconds until ``topic`` holds a record."""
    consumer, tps = _consumer(bootstrap, topic)
    began = time.monotonic()
    try:
        while time.monotonic() - began < timeout:
            if sum(consumer.end_offsets(tps).values()) > 0:
                return time.monotonic() - began
            time.sleep(0.1)
    finally:
        consumer.close()
    raise BenchError(f"the gateway emitted no request leg to {topic} within {timeout:.0f}s")


def topic_events(bootstrap: str, topic: str, timeout: float = 60.0) -> dict:
    """Events (a record is one CloudEvent or a batch of them) on ``topic``, and the pair outcomes."""
    consumer, tps = _consumer(bootstrap, topic)
    events = records = 0
    outcomes: dict[str, int] = {}
    try:
        end = consumer.end_offsets(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BenchError(f"could not read {topic} to its end within {timeout:.0f}s")
            for batch in consumer.poll(timeout_ms=500).values():
                for r in batch:
                    records += 1
                    doc = json.loads(r.value)
                    for event in doc if isinstance(doc, list) else [doc]:
                        events += 1
                        outcome = (event.get("data") or {}).get("outcome")
                        if outcome:
                            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        consumer.close()
    return {"events": events, "records": records, **({"outcomes": outcomes} if outcomes else {})}


# ---- the parent: one configuration --------------------------------------------------------------
def run_setup(ctx: BenchContext, setup: Setup) -> list[Result]:
    n = ctx.size("gateway_requests", DEFAULT_REQUESTS)
    round_size = max(25, min(250, n // RUNS_PER_SIDE))
    suffix = uuid.uuid4().hex[:8]
    work = ctx.scratch / f"{setup.key}-{suffix}"
    work.mkdir(parents=True)
    children = Children()
    gateways: dict[str, subprocess.Popen] = {}
    topics: dict[str, tuple[str, str]] = {}
    configs: dict[str, str] = {}
    before = os.environ.get(BEFORE_ENV, "")
    sides = SIDES + (BEFORE_SIDES if before else ())
    try:
        backend_cmd = [sys.executable, "-m", "bench.gateway_latency", "backend", "--service-ms", str(SERVICE_MS)]
        urls = {}
        for role in ("primary", "shadow"):
            log = work / f"backend-{role}.log"
            proc = children.start(f"{role} backend", backend_cmd, log)
            port = int(first_line(proc, f"the {role} backend", log).split()[-1])
            urls[role] = f"http://127.0.0.1:{port}"
        ctx.progress(f"{setup.key}: backends {urls} ({SERVICE_MS:g} ms service time)")
        bases = {"direct": urls["primary"]}
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update({"HUB_HOME": str(work / "home"), "HUB_KAFKA_BOOTSTRAP": ctx.bootstrap})
        gateway_sides = [("plain", 0), ("shadow", SHADOW_PERCENT)]
        if before:
            gateway_sides += [("plain-before", 0), ("shadow-before", SHADOW_PERCENT)]
        started = {}
        for side, percent in gateway_sides:
            legs_topic, pairs_topic = f"bench-gw-{side}-legs-{suffix}", f"bench-gw-{side}-pairs-{suffix}"
            ensure_topics(ctx.bootstrap, {legs_topic: PARTITIONS, pairs_topic: PARTITIONS})
            topics[side] = (legs_topic, pairs_topic)
            configs[side] = config_yaml(f"bench-{side}-{suffix}", urls["primary"], urls["shadow"] if percent else None,
                                        percent, ctx.bootstrap, legs_topic, pairs_topic)
            config_path = work / f"gateway-{side}.yaml"
            config_path.write_text(configs[side])
            gw_log = work / f"gateway-{side}.log"
            side_env, cwd = env, None
            if side.endswith("-before"):
                side_env, cwd = {**env, "PYTHONPATH": before}, before
            gateways[side] = children.start(f"{side} gateway", [sys.executable, "-m", "hub.cli.main", "gateway",
                                                                "--config", str(config_path)],
                                            gw_log, env=side_env, stop_signal=signal.SIGINT, cwd=cwd)
            started[side] = gw_log
        for side, gw_log in started.items():
            legs_topic = topics[side][0]
            listening = first_line(gateways[side], f"the {side} gateway", gw_log)
            bases[side] = listening.rsplit(" ", 1)[-1]
            host, port = bases[side].removeprefix("http://").rsplit(":", 1)
            warm_through(host, int(port), WARM_UP)
            wait_for_records(ctx.bootstrap, legs_topic)
            ctx.progress(f"{setup.key}: {side}: {listening}; {WARM_UP} warm-up requests; legs on {legs_topic}")

        runs = {}
        gateway_requests = WARM_UP
        for concurrency in CONCURRENCIES:
            label = f"{setup.label}, concurrency {concurrency}"
            ctx.progress(f"{setup.key}: {n:,} requests per side ({', '.join(sides)}) at concurrency {concurrency}, "
                         f"runs of {round_size}")
            hog_proc = None
            if setup.hog:
                hog_log = work / "hog.log"
                hog_proc = children.start("cpu hog", [sys.executable, "-m", "bench.gateway_latency", "hog",
                                                      "--seconds", str(600 + n * 0.2)], hog_log)
                first_line(hog_proc, "the CPU hog", hog_log)
            cpu0 = {side: cpu_seconds(gateways[side].pid) for side in gateways}
            load0 = os.getloadavg()
            try:
                out = run_json_child(ctx, f"the load client ({label})", [
                    "-m", "bench.gateway_latency", "client", *itertools.chain.from_iterable(
                        ("--side", f"{side}={bases[side]}") for side in sides),
                    "--requests", str(n), "--concurrency", str(concurrency), "--round", str(round_size),
                    "--warm-up", str(WARM_UP), "--label", f"{setup.key} c={concurrency}"],
                    timeout=300 + n * 0.3)
            finally:
                if hog_proc is not None:
                    children.stop(hog_proc)
            cpu1 = {side: cpu_seconds(gateways[side].pid) for side in gateways}
            load1 = os.getloadavg()
            for side, proc in gateways.items():
                if proc.poll() is not None:
                    raise BenchError(f"the {side} gateway exited with {proc.returncode}")
            through = n + WARM_UP
            gateway_requests += through
            r = {side: summary(out[side]["latencies_ms"], out[side]["seconds"]) for side in sides}
            r.update({
                "run_p50_ms": {side: out[side]["run_p50_ms"] for side in sides},
                "round_size": out["round_size"], "blocks": out["blocks"], "warm_up_per_side": out["warm_up"],
                "gateway_cpu_ms_per_request": {
                    side: (round((cpu1[side] - cpu0[side]) * 1000 / through, 3)
                           if cpu0[side] is not None and cpu1[side] is not None else None) for side in gateways},
                "load_average_before": [round(x, 2) for x in load0],
                "load_average_after": [round(x, 2) for x in load1],
            })
            d, pl, sh = r["direct"], r["plain"], r["shadow"]
            r["added_ms"] = {side: {k: round(r[side][k] - d[k], 3) for k in ("p50", "p90", "p99", "p99.9", "mean")}
                             for side in sides if side != "direct"}
            r["goals"] = goals(r, concurrency)
            runs[concurrency] = r
            ctx.progress(f"{setup.key}: concurrency {concurrency}: p50/p99 direct {d['p50']:.2f}/{d['p99']:.2f} ms, "
                         f"plain {pl['p50']:.2f}/{pl['p99']:.2f} ms, shadow {sh['p50']:.2f}/{sh['p99']:.2f} ms; "
                         f"{d['requests_per_second']:,.0f} / {pl['requests_per_second']:,.0f} / "
                         f"{sh['requests_per_second']:,.0f} req/s")

        emitted = {}
        for side, proc in gateways.items():
            status = children.stop(proc)
            legs_topic, pairs_topic = topics[side]
            legs = topic_events(ctx.bootstrap, legs_topic)
            shadowed = gateway_requests * SHADOW_PERCENT // 100 if side.startswith("shadow") else 0
            emitted[side] = {"legs_topic": legs_topic, "gateway_exit": status, "gateway_requests": gateway_requests,
                             "legs_expected": gateway_requests + shadowed, "legs": legs["events"]}
            if shadowed:
                pairs = topic_events(ctx.bootstrap, pairs_topic)
                emitted[side].update({"pairs_expected": shadowed, "pairs": pairs["events"],
                                      "pair_outcomes": pairs.get("outcomes", {})})
        ctx.progress(f"{setup.key}: emitted {emitted}")
    finally:
        children.stop_all()

    ctx.sections.append(section(setup, n, runs, emitted))
    results = []
    for concurrency, r in runs.items():
        label = f"{setup.label}, concurrency {concurrency}"
        first = f"gateway plain p50 ({label})"
        details = {"backend_service_ms": SERVICE_MS, "requests_per_side": n, "concurrency": concurrency,
                   "gateway_configs": configs, **r, "emitted": emitted}
        for name, _ in PERCENTILES:
            results.append(Result(f"gateway plain {name} ({label})", r["plain"][name], "ms", r["direct"][name],
                                  higher_is_better=False,
                                  details=details if name == "p50" else {"same run as": first}))
            results.append(Result(f"gateway shadow {SHADOW_PERCENT}% {name} vs plain ({label})", r["shadow"][name],
                                  "ms", r["plain"][name], higher_is_better=False, details={"same run as": first}))
        results.append(Result(f"gateway plain requests/s ({label})", r["plain"]["requests_per_second"], "req/s",
                              r["direct"]["requests_per_second"], higher_is_better=True,
                              details={"same run as": first}))
        results.append(Result(f"gateway shadow {SHADOW_PERCENT}% requests/s vs plain ({label})",
                              r["shadow"]["requests_per_second"], "req/s", r["plain"]["requests_per_second"],
                              higher_is_better=True, details={"same run as": first}))
    return results


GOALS = {"plain added p50 ms": {1: 0.3, 4: 0.5}, "plain added p99 ms": 1.0, "plain/direct req/s": 0.9,
         "shadow/plain within": 0.05}


def goals(r: dict, concurrency: int) -> dict:
    """Each goal of the gateway's cost: the figure of this run and whether it is met."""
    d, pl, sh = r["direct"], r["plain"], r["shadow"]
    p50_goal = GOALS["plain added p50 ms"][concurrency if concurrency in (1, 4) else 4]
    out = {"plain added p50 ms": (round(pl["p50"] - d["p50"], 3), p50_goal),
           "plain added p99 ms": (round(pl["p99"] - d["p99"], 3), GOALS["plain added p99 ms"]),
           "plain/direct req/s": (round(pl["requests_per_second"] / d["requests_per_second"], 3),
                                  GOALS["plain/direct req/s"])}
    for k in ("p50", "p99", "requests_per_second"):
        out[f"shadow/plain {k}"] = (round(sh[k] / pl[k], 3), GOALS["shadow/plain within"])
    met = {}
    for name, (value, goal) in out.items():
        if name.startswith("shadow/plain"):
            worse = value - 1 if "requests" not in name else 1 - value
            met[name] = {"value": value, "goal": f"within {goal:.0%}", "met": worse <= goal}
        elif name.endswith("req/s"):
            met[name] = {"value": value, "goal": f">= {goal}", "met": value >= goal}
        else:
            met[name] = {"value": value, "goal": f"< {goal}", "met": value < goal}
    return met


def section(setup: Setup, n: int, runs: dict, emitted: dict) -> str:
    rows = [("concurrency", "", "direct", "plain", "added", "shadow", "added", "shadow/plain")]
    for concurrency, r in runs.items():
        d, pl, sh = r["direct"], r["plain"], r["shadow"]
        for name in ("p50", "p90", "p99", "p99.9", "mean"):
            rows.append((str(concurrency), f"{name} ms", f"{d[name]:.2f}", f"{pl[name]:.2f}",
                         f"{pl[name] - d[name]:+.2f}", f"{sh[name]:.2f}", f"{sh[name] - d[name]:+.2f}",
                         f"{sh[name] / pl[name]:.3f}x"))
        rps = [x["requests_per_second"] for x in (d, pl, sh)]
        rows.append((str(concurrency), "req/s", f"{rps[0]:,.0f}", f"{rps[1]:,.0f}", f"{rps[1] / rps[0]:.2f}x",
                     f"{rps[2]:,.0f}", f"{rps[2] / rps[0]:.2f}x", f"{rps[2] / rps[1]:.3f}x"))
        cpu = r["gateway_cpu_ms_per_request"]
        rows.append((str(concurrency), "gateway CPU ms/req", "", f"{cpu['plain']}", "", f"{cpu['shadow']}", "", ""))
        rows.append((str(concurrency), "load average", f"{r['load_average_before'][0]:.1f}", "", "",
                     f"{r['load_average_after'][0]:.1f}", "", ""))
        if "plain-before" in r:  # the same rows for the other tree's gateways, and after/before
            pb, sb = r["plain-before"], r["shadow-before"]
            for name in ("p50", "p90", "p99", "mean"):
                rows.append((str(concurrency), f"before {name} ms", f"{d[name]:.2f}", f"{pb[name]:.2f}",
                             f"{pb[name] - d[name]:+.2f}", f"{sb[name]:.2f}", f"{sb[name] - d[name]:+.2f}",
                             f"{sb[name] / pb[name]:.3f}x"))
            rows.append((str(concurrency), "before req/s", "", f"{pb['requests_per_second']:,.0f}",
                         f"{pb['requests_per_second'] / d['requests_per_second']:.2f}x",
                         f"{sb['requests_per_second']:,.0f}",
                         f"{sb['requests_per_second'] / d['requests_per_second']:.2f}x", ""))
            rows.append((str(concurrency), "before CPU ms/req", "", f"{cpu['plain-before']}", "",
                         f"{cpu['shadow-before']}", "", ""))
            for name in ("p50", "p99", "requests_per_second"):
                label = "req/s" if name == "requests_per_second" else f"{name}"
                rows.append((str(concurrency), f"after/before {label}", "", f"{pl[name] / pb[name]:.3f}x", "",
                             f"{sh[name] / sb[name]:.3f}x", "", ""))
            if cpu["plain"] and cpu["plain-before"]:
                rows.append((str(concurrency), "after/before CPU", "", f"{cpu['plain'] / cpu['plain-before']:.3f}x",
                             "", f"{cpu['shadow'] / cpu['shadow-before']:.3f}x", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{setup.key} ({setup.label}): backend {SERVICE_MS:g} ms service time, {n:,} requests per side "
             f"per concurrency, runs of {next(iter(runs.values()))['round_size']} (direct plain shadow, then reversed)"]
    for i, row in enumerate(rows):
        lines.append("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1])]
                               + [c.rjust(w) for c, w in zip(row[2:], widths[2:])]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for concurrency, r in runs.items():
        lines.append(f"goals at concurrency {concurrency}: " + "; ".join(
            f"{name} {g['value']} ({g['goal']}: {'met' if g['met'] else 'NOT met'})" for name, g in r["goals"].items()))
    for side, e in emitted.items():
        line = f"emitted by {side}: {e['legs']:,} legs (expected {e['legs_expected']:,})"
        if "pairs" in e:
            line += f", {e['pairs']:,} pairs (expected {e['pairs_expected']:,}), outcomes {e['pair_outcomes']}"
        lines.append(line)
    return "\n".join(lines)


def benchmarks():
    """(key, description, callable) of each benchmark of this module."""
    return [(s.key, f"latency added by a plain and a {SHADOW_PERCENT}%-shadowing gateway against direct calls to a "
                    f"{SERVICE_MS:g} ms backend, side by side, concurrency {' and '.join(map(str, CONCURRENCIES))} "
                    f"({DEFAULT_REQUESTS:,} requests per side by default; {s.label})",
             lambda ctx, s=s: run_setup(ctx, s)) for s in SETUPS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_latency",
                                     description="The processes of the gateway latency benchmark "
                                                 "(run it with python -m bench.run --only gateway).")
    sub = parser.add_subparsers(dest="role", required=True)
    b = sub.add_parser("backend", help="an aiohttp backend on a free loopback port; prints 'listening PORT'")
    b.add_argument("--service-ms", type=float, default=SERVICE_MS)
    c = sub.add_parser("client", help="the load client; prints the latencies as one JSON line")
    c.add_argument("--side", action="append", required=True, metavar="NAME=URL", help="a side to measure")
    c.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    c.add_argument("--concurrency", type=int, default=4)
    c.add_argument("--round", type=int, default=250)
    c.add_argument("--warm-up", type=int, default=WARM_UP)
    c.add_argument("--label", default="client")
    h = sub.add_parser("hog", help="spin on core 0 for --seconds")
    h.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args(argv)
    try:
        if args.role == "backend":
            serve_backend(args.service_ms)
        elif args.role == "hog":
            hog(args.seconds)
        else:
            bases = dict(side.split("=", 1) for side in args.side)
            out = asyncio.run(drive(bases, args.requests, args.concurrency, args.round, args.warm_up, args.label))
            print(json.dumps(out, separators=(",", ":")), flush=True)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
