"""End-to-end sink throughput: records per second from a Kafka topic to rows queryable in ClickHouse.

For one variant (events per Kafka record):

1. A fresh topic of 4 partitions is filled with N generated request-leg events
   (``generate_request_legs``, sent with ``send_records(..., events_per_record=K)``).
2. hub: a worker process (``hub.testing.WorkerProcess``, its own HUB_HOME and chDB store,
   HUB_TOPIC_REQUESTS = that topic) is launched; the clock starts when it reports ready
   (``/ready``, polled every 0.05 s) and stops when ``SELECT count() FROM hub.requests``
   through its ``/v1/sql`` equals N (polled every 0.1 s). Launch to ready is reported apart.
3. baseline: ``bench.baseline_sink`` in its own process reads the same topic with a plain
   kafka-python consumer and inserts with clickhouse-connect; its clock runs from its first
   poll until its table holds N rows. Its launch to first poll is its start-up.
4. Peak memory of both processes: ``VmHWM`` from ``/proc/<pid>/status`` (the peak resident set
   size over the process's life), read from the worker once every row is stored and before it is
   stopped, and by the baseline consumer itself just before it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from bench.common import BenchContext, BenchError, Result, peak_rss_mib
from hub.producer import send_records
from hub.records.generate import generate_request_legs
from hub.runtime.kafka import tail
from hub.runtime.topics import ensure_topics
from hub.settings import REPO_ROOT
from hub.testing import WorkerProcess, isolated_env

PARTITIONS = 4
READY_POLL = 0.05
COUNT_POLL = 0.1


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    events_per_record: int
    default_events: int


VARIANTS = (
    Variant("sink-batched", "batched records", 100, 200_000),
    Variant("sink-single", "one event per record", 1, 50_000),
)


def prefill(ctx: BenchContext, variant: Variant, events: int) -> tuple[str, dict]:
    topic = f"bench-requests-{variant.events_per_record}-{uuid.uuid4().hex[:8]}"
    ensure_topics(ctx.bootstrap, {topic: PARTITIONS})
    ctx.progress(f"pre-filling {topic} with {events:,} events, {variant.events_per_record} per record")
    sent, seconds = send_records(ctx.bootstrap, topic, generate_request_legs(events, seed=7),
                                 progress=ctx.progress, every=max(events // 4, 1),
                                 events_per_record=variant.events_per_record)
    if sent != events:
        raise BenchError(f"pre-fill sent {sent:,} events, expected {events:,}")
    return topic, {"topic": topic, "partitions": PARTITIONS, "prefill_seconds": round(seconds, 3),
                   "prefill_events_per_second": round(events / seconds)}


def run_hub(ctx: BenchContext, topic: str, events: int, timeout: float) -> dict:
    home = ctx.scratch / f"hub-{topic}"
    worker = WorkerProcess(isolated_env(home, ctx.bootstrap, HUB_TOPIC_REQUESTS=topic))
    try:
        ctx.progress(f"hub: launching worker (HUB_HOME={home})")
        with open(worker.log_path, "ab") as log:
            launched = time.monotonic()
            worker.process = subprocess.Popen([sys.executable, "-m", "streams.worker"], env=worker.env,
                                              stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        deadline = launched + 180
        while not worker.stack.is_ready():
            _check_worker(worker, deadline, "ready")
            time.sleep(READY_POLL)
        ready = time.monotonic()
        cpu_at_ready = cpu_seconds(worker.process.pid)
        ctx.progress(f"hub: ready after {ready - launched:.2f}s; waiting for {events:,} rows")
        count = first_count = _count(worker)
        polls = 1
        deadline = ready + timeout
        last_report = ready
        while count != events:
            if count > events:
                raise BenchError(f"hub.requests holds {count:,} rows, more than the {events:,} sent")
            _check_worker(worker, deadline, f"{events:,} rows (at {count:,})")
            time.sleep(COUNT_POLL)
            count = _count(worker)
            polls += 1
            now = time.monotonic()
            if now - last_report >= 2.0:
                last_report = now
                ctx.progress(f"hub: {count:,} rows ({count / (now - ready):,.0f}/s)")
        done = time.monotonic()
        cpu = cpu_seconds(worker.process.pid) - cpu_at_ready
        try:
            sink = worker.stack.api("/v1/status", timeout=10).get("sink", {}).get("requests", {})
        except Exception:  # noqa: BLE001 - stats are a detail
            sink = {}
        # VmHWM: the worker's peak resident set size over its whole life, read while it still runs.
        peak = peak_rss_mib(worker.process.pid)
        if peak is None:
            raise BenchError(f"could not read /proc/{worker.process.pid}/status for the worker's peak memory")
        return {"startup_seconds": round(ready - launched, 3), "startup_cpu_seconds": round(cpu_at_ready, 3),
                "seconds": round(done - ready, 3),
                "rows": count, "rows_at_ready": first_count, "rows_per_second": round(events / (done - ready)),
                "peak_rss_mib": peak, "cpu_seconds": round(cpu, 3), "count_polls": polls,
                "rows_per_cpu_second": round(events / cpu),
                "sink": sink}
    finally:
        worker.stop()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _count(worker: WorkerProcess) -> int:
    return int(worker.sql("SELECT count() FROM hub.requests")[0][0])


def _check_worker(worker: WorkerProcess, deadline: float, what: str) -> None:
    if worker.process.poll() is not None:
        raise BenchError(f"the worker exited with {worker.process.returncode} before {what}:\n"
                         f"{tail(worker.log_path, 40)}")
    if time.monotonic() > deadline:
        raise BenchError(f"the worker did not reach {what} in time:\n{tail(worker.log_path, 40)}")


def run_baseline(ctx: BenchContext, topic: str, events: int, timeout: float, check_crcs: bool = True) -> dict:
    data_dir = ctx.scratch / f"baseline-{topic}-{'crc' if check_crcs else 'nocrc'}"
    cmd = [sys.executable, "-m", "bench.baseline_sink", "--bootstrap", ctx.bootstrap, "--topic", topic,
           "--events", str(events), "--data-dir", str(data_dir), "--batch-rows", "20000",
           "--timeout", str(timeout)] + ([] if check_crcs else ["--no-check-crcs"])
    ctx.progress(f"baseline: launching kafka-python + clickhouse-connect consumer (check_crcs={check_crcs})")
    launched = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, stdin=subprocess.DEVNULL,
                            cwd=REPO_ROOT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if proc.returncode != 0:
        raise BenchError(f"the baseline consumer exited with {proc.returncode} (its output is above)")
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"the baseline consumer printed no result: {out[-2000:]!r}") from None
    seconds = result["done"] - result["first_poll"]
    return {"startup_seconds": round(result["first_poll"] - launched, 3),
            "startup_cpu_seconds": result["cpu_at_first_poll"], "seconds": round(seconds, 3),
            "rows": result["rows"], "rows_per_second": round(events / seconds),
            "records": result["records"], "inserts": result["inserts"], "check_crcs": check_crcs,
            "insert_seconds": result["insert_seconds"], "peak_rss_mib": result["peak_rss_mib"],
            "cpu_seconds": result["cpu_seconds"], "rows_per_cpu_second": round(events / result["cpu_seconds"])}


def run_variant(ctx: BenchContext, variant: Variant) -> list[Result]:
    events = ctx.events or variant.default_events
    timeout = max(300.0, events / 200)
    topic, prefill_info = prefill(ctx, variant, events)
    hub = run_hub(ctx, topic, events, timeout)
    ctx.progress(f"hub: {hub['rows_per_second']:,} rows/s ({hub['seconds']:.2f}s)")
    baseline = run_baseline(ctx, topic, events, timeout)
    ctx.progress(f"baseline: {baseline['rows_per_second']:,} rows/s ({baseline['seconds']:.2f}s)")
    # kafka-python checks each record batch's CRC32C in pure Python (~2 MB/s) unless the
    # optional crc32c package is installed; this second baseline shows the cost of that alone.
    no_crc = run_baseline(ctx, topic, events, timeout, check_crcs=False)
    ctx.progress(f"baseline, check_crcs=False: {no_crc['rows_per_second']:,} rows/s ({no_crc['seconds']:.2f}s)")
    details = {"events": events, "events_per_record": variant.events_per_record, **prefill_info,
               "hub": hub, "baseline": baseline, "baseline_no_crc_check": no_crc}
    return [
        Result(f"sink e2e ({variant.label})", hub["rows_per_second"], "rows/s",
               baseline["rows_per_second"], higher_is_better=True, details=details),
        Result(f"sink e2e ({variant.label}), baseline check_crcs=False", hub["rows_per_second"], "rows/s",
               no_crc["rows_per_second"], higher_is_better=True,
               details={"same hub run as": f"sink e2e ({variant.label})",
                        "baseline": "kafka-python with check_crcs=False"}),
        Result(f"sink rows per CPU second ({variant.label})", hub["rows_per_cpu_second"], "rows/s",
               baseline["rows_per_cpu_second"], higher_is_better=True,
               details={"same runs as": f"sink e2e ({variant.label})",
                        "hub": "rows / CPU seconds (user + system, all threads) of the worker from ready to done, "
                               "its answers to the benchmark's count queries included",
                        "baseline": "rows / CPU seconds of the baseline consumer (check_crcs=True) from first poll "
                                    "to done", "baseline_no_crc_check": no_crc["rows_per_cpu_second"]}),
        Result(f"sink start-up ({variant.label})", hub["startup_seconds"], "s",
               baseline["startup_seconds"], higher_is_better=False,
               details={"hub": "worker launch to /ready", "baseline": "process launch to first poll",
                        "hub_cpu_seconds": hub["startup_cpu_seconds"],
                        "baseline_cpu_seconds": baseline["startup_cpu_seconds"]}),
        Result(f"worker peak memory ({variant.label})", hub["peak_rss_mib"], "MiB",
               baseline["peak_rss_mib"], higher_is_better=False,
               details={"same runs as": f"sink e2e ({variant.label})",
                        "hub": "VmHWM of the worker process, read when all rows were stored, before it stops",
                        "baseline": "VmHWM of the baseline consumer (check_crcs=True), read before it exits",
                        "baseline_no_crc_check": no_crc["peak_rss_mib"]}),
    ]


def benchmarks():
    """(key, description, callable) of each benchmark of this module."""
    return [(v.key, f"sink e2e, {v.label} ({v.events_per_record} events/record, "
                    f"{v.default_events:,} events by default)",
             lambda ctx, v=v: run_variant(ctx, v)) for v in VARIANTS]
