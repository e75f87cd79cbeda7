"""Run the hub's benchmarks, print a table and record the results.

    .venv/bin/python -m bench.run [--events N] [--only NAME] [--output PATH]
                                  [--pairing-legs N] [--dashboard-rows N] [--dashboard-repeats N]

Starts an embedded Kafka broker of its own (temporary HUB_HOME, free port pair, the shared
jar cache HUB_KAFKA_CACHE) unless HUB_KAFKA_BOOTSTRAP names a cluster to use. Progress goes to
stderr, the table to stdout. Results (with date, git commit and machine) are written to
``bench/results/<UTC timestamp>.json`` and copied to ``bench/results/latest.json``, or only
to PATH with ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from bench import (alert_latency, dashboard_queries, gateway_latency, pairing_throughput, redaction_throughput,
                   sink_throughput)
from bench.common import BenchContext, BenchError, Result
from hub.errors import HubError
from hub.settings import REPO_ROOT, load_settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Each module has benchmarks() -> [(key, description, run(ctx) -> [Result])]; the table keeps this order.
MODULES = (
    sink_throughput,     # sink e2e and start-up per variant, the worker's peak memory
    alert_latency,       # breach-to-alert latency at 10,000 legs/s, hub vs a plain consumer judging in memory
    pairing_throughput,  # stream pairing vs insert + JOIN
    dashboard_queries,   # dashboard queries over one experiment, hub schema vs plain MergeTree
    gateway_latency,     # latency the gateway adds per request (plain, shadowing) vs direct calls
    redaction_throughput,  # rows/s through the redactor alone; decode+insert with vs without redaction
)


def all_benchmarks():
    found = []
    for module in MODULES:
        found.extend(module.benchmarks())
    return found


def progress(line: str) -> None:
    print(f"[bench] {line.strip()}", file=sys.stderr, flush=True)


class Broker:
    """The Kafka cluster of the run: HUB_KAFKA_BOOTSTRAP's, or an embedded broker started here."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.runtime = None
        self.external = os.environ.get("HUB_KAFKA_BOOTSTRAP", "").strip()
        self.bootstrap = self.external
        self.kafka_version = "external" if self.external else load_settings().kafka_version

    def start(self) -> str:
        from hub.runtime.kafka import KafkaRuntime, wait_for_kafka

        if self.external:
            progress(f"using the Kafka cluster at {self.external} (HUB_KAFKA_BOOTSTRAP)")
            wait_for_kafka(self.external, timeout=30)
            return self.external
        from tests.fixtures_kafka import runtime_settings

        settings = runtime_settings(self.scratch / "kafka-home")
        self.kafka_version = settings.kafka_version
        self.runtime = KafkaRuntime(settings)
        progress(f"starting an embedded Kafka {settings.kafka_version} broker on {settings.bootstrap}")
        started = time.monotonic()
        try:
            self.runtime.start(wait=True, progress=progress)
        except HubError as exc:
            raise BenchError(f"the embedded Kafka broker could not start on {settings.bootstrap}: {exc}") from exc
        progress(f"broker ready after {time.monotonic() - started:.1f}s")
        self.bootstrap = self.runtime.bootstrap
        return self.bootstrap

    def stop(self) -> None:
        if self.runtime is not None:
            progress("stopping the embedded Kafka broker")
            self.runtime.stop(timeout=30)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict:
    """The commit checked out and the files changed since it (the working tree is what runs)."""
    return {"git_commit": _git("rev-parse", "HEAD"),
            "git_dirty_files": (_git("diff", "--name-only", "HEAD") or "").split()}


def environment(kafka_version: str) -> dict:
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "kafka": kafka_version,
            "chdb": _version("chdb"),
            "chdb_core": _version("chdb-core"),
            "faust_streaming": _version("faust-streaming"),
            "kafka_python": _version("kafka-python"),
            "aiokafka": _version("aiokafka"),
            "clickhouse_connect": _version("clickhouse-connect"),
            "msgspec": _version("msgspec"),
        },
    }


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:,.2f}"
    if unit in ("ms", "MiB"):
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def table(results: list[Result]) -> str:
    header = ("benchmark", "hub", "unit", "baseline", "hub/baseline")
    rows = [header]
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        rows.append((r.name, _figure(r.value, r.unit), r.unit, _figure(r.baseline, r.unit), ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4])]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(document: dict, output: str | None) -> list[Path]:
    text = json.dumps(document, indent=2, default=str) + "\n"
    if output:
        targets = [Path(output)]
    else:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = document["started_at"].replace("-", "").replace(":", "").split(".")[0] + "Z"
        targets = [RESULTS_DIR / f"{stamp}.json", RESULTS_DIR / "latest.json"]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return targets


def _sigterm(signum, frame):  # noqa: ANN001
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    benches = all_benchmarks()
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run the hub's benchmarks.",
                                     epilog="benchmarks: " + "; ".join(f"{k}: {d}" for k, d, _ in benches))
    parser.add_argument("--events", type=int, default=None,
                        help="the size of every benchmark: events of the sink runs, legs of the pairing run, "
                             "request rows of the dashboard run (default: each benchmark's own)")
    parser.add_argument("--pairing-legs", type=int, default=None, metavar="N",
                        help=f"legs of the pairing benchmark (default {pairing_throughput.DEFAULT_LEGS:,}; "
                             "wins over --events)")
    parser.add_argument("--dashboard-rows", type=int, default=None, metavar="N",
                        help=f"request rows of the dashboard benchmark (default {dashboard_queries.DEFAULT_ROWS:,}; "
                             "wins over --events)")
    parser.add_argument("--dashboard-repeats", type=int, default=None, metavar="N",
                        help=f"timed passes over the dashboard queries (default {dashboard_queries.DEFAULT_REPEATS})")
    parser.add_argument("--alert-rate", type=int, default=None, metavar="N",
                        help=f"request legs per second of the breach-to-alert benchmark "
                             f"(default {alert_latency.RATE:,})")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only the benchmarks whose key contains NAME (repeatable)")
    parser.add_argument("--output", metavar="PATH",
                        help="write the JSON results here instead of bench/results/<timestamp>.json + latest.json")
    args = parser.parse_args(argv)
    if args.events is not None and args.events < 1:
        parser.error("--events must be at least 1")
    if args.pairing_legs is not None and args.pairing_legs < 2:
        parser.error("--pairing-legs must be at least 2")
    if args.dashboard_rows is not None and args.dashboard_rows < 1000:
        parser.error("--dashboard-rows must be at least 1000")
    if args.alert_rate is not None and args.alert_rate < alert_latency.EVENTS_PER_RECORD:
        parser.error(f"--alert-rate must be at least {alert_latency.EVENTS_PER_RECORD}")
    if args.dashboard_repeats is not None and args.dashboard_repeats < 1:
        parser.error("--dashboard-repeats must be at least 1")
    selected = [b for b in benches if not args.only or any(name in b[0] for name in args.only)]
    if not selected:
        parser.error(f"no benchmark matches {args.only}; known: {', '.join(k for k, _, _ in benches)}")

    signal.signal(signal.SIGTERM, _sigterm)
    started_at = datetime.now(timezone.utc)
    t0 = time.monotonic()
    load_before = os.getloadavg()
    git = git_state()  # at the start: other commits may land while the benchmarks run
    scratch = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    broker = Broker(scratch)
    results: list[Result] = []
    try:
        sizes = {"pairing_legs": args.pairing_legs, "dashboard_rows": args.dashboard_rows,
                 "dashboard_repeats": args.dashboard_repeats, "alert_rate": args.alert_rate}
        ctx = BenchContext(bootstrap=broker.start(), scratch=scratch, events=args.events, sizes=sizes)
        for key, description, run in selected:
            progress(f"== {key}: {description}")
            results.extend(run(ctx))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except HubError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    document = {
        "started_at": started_at.isoformat(timespec="seconds").replace("+00:00", ""),
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        **git,
        **environment(broker.kafka_version),
        "results": [r.as_dict() for r in results],
        "sections": ctx.sections,
    }
    print(table(results))
    for section in ctx.sections:
        print()
        print(section)
    for path in write_results(document, args.output):
        progress(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
