"""Reliability suite: crash the worker, restart the broker, deliver twice, and count what was stored.

    .venv/bin/python -m bench.reliability [--short] [--seed N] [--json PATH]

One worker (``hub.testing.WorkerProcess``: a real ``python -m streams.worker`` with its own
HUB_HOME, embedded chDB store and consumer group) and one Kafka broker (embedded, started here
and stopped and started again mid-run; with HUB_KAFKA_BOOTSTRAP set the broker is that cluster
and the broker-restart phase is left out). Each phase's records carry event times on a day of
their own, so every phase is counted apart in ``hub.requests``.

Phases, in order:

1. ``kills``: records flow (paced, in a thread) while the worker is SIGKILLed several times at
   random instants and started again. Kafka redelivers everything after the last committed
   offset: these *redeliveries* (same topic, partition and offset) are what the sink must store
   once. An experiment with an abort rule is running, and a burst of failing requests that
   breaches the rule is sent between two kills: exactly one firing alert is expected.
2. ``broker-restart``: half the records are sent, the embedded broker is stopped while the
   worker consumes them, then started again, and the other half is sent.
3. ``duplicate-produce``: the same records are produced twice, the second time shuffled and
   packed differently (CloudEvents batches of 25 events per Kafka record instead of one). These
   are *not* redeliveries: each copy is a distinct Kafka record (its own offset), so the sink
   stores both, by design (it deduplicates by offset, never by event id). Expected: twice the rows,
   once the distinct event ids; queries that need one row per event use ``uniqExact(event_id)``
   or ``LIMIT 1 BY event_id``.

For every phase the suite prints records sent, rows expected, rows stored, distinct event ids,
duplicated (rows beyond the expected) and lost (rows or distinct ids short of the expected),
and then the alerts expected and raised. Exit status 1 if any phase lost or duplicated a record or the
alert count differs. ``--json PATH`` also writes those counts to PATH (written on failure too, with
the error). The full suite only prints; ``tests/integration/test_reliability_short.py`` runs
``--short`` with ``--json`` as part of the test suite and checks the counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

from hub.producer import send_records
from hub.records.generate import encode_event, generate_request_legs
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Reliability suite checkout
    scenario: Worker crashes and broker restarts while checkout traffic flows.
    hypothesis: Errors stay under 20%.
    expected_outcome: One abort alert, from the injected burst.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}]}}
    phases: [{{name: baseline, planned_minutes: 1}}, {{name: injection, planned_minutes: 1}}]
    abort_conditions:
      - {{name: checkout-errors, measurement: error_rate, window: 10s, comparison: ">", threshold: 0.2,
          min_samples: 50, severity: abort}}
""")

# Each phase's records start at midnight of a day of its own in the last week (within HUB_TTL_DAYS).
_MIDNIGHT = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
DAY = {"kills": _MIDNIGHT - dt.timedelta(days=4),
       "broker-restart": _MIDNIGHT - dt.timedelta(days=3),
       "duplicate-produce": _MIDNIGHT - dt.timedelta(days=2)}


def progress(line: str) -> None:
    print(f"[reliability] {line}", file=sys.stderr, flush=True)


def hub_cli(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def breach_legs(gateway: str, start: dt.datetime, count: int, errors: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(count):
        cid = uuid.uuid4().hex
        leg = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route="/checkout", method="POST",
                         backend="checkout-v1", status=503 if i < errors else 200, latency_ms=20.0,
                         event_time=start + dt.timedelta(seconds=0.5 * i / count))
        out.append((cid.encode(), encode_event(new_event(leg, source="/reliability"))))
    return out


def event_ids(records) -> set[str]:
    return {json.loads(value)["id"] for _, value in records}


class Suite:
    def __init__(self, scratch: Path, short: bool, seed: int):
        self.scratch = scratch
        self.short = short
        self.rng = random.Random(seed)
        self.seed = seed
        self.runtime = None
        self.bootstrap = os.environ.get("HUB_KAFKA_BOOTSTRAP", "").strip()
        self.worker: WorkerProcess | None = None
        self.rows: list[dict] = []
        self.kills = 0
        self.alerts_expected = 0
        self.summary: dict = {}

    # ---- infrastructure ------------------------------------------------------------------
    def start_broker(self) -> None:
        if self.bootstrap:
            progress(f"using the Kafka cluster at {self.bootstrap}; the broker-restart phase is left out")
            return
        from hub.runtime.kafka import KafkaRuntime
        from tests.fixtures_kafka import runtime_settings

        self.runtime = KafkaRuntime(runtime_settings(self.scratch / "kafka-home"))
        progress(f"starting an embedded Kafka broker on {self.runtime.bootstrap}")
        self.runtime.start(wait=True, progress=progress)
        self.bootstrap = self.runtime.bootstrap

    def sql(self, query: str):
        return self.worker.sql(query)

    def ensure_worker(self) -> None:
        """Relaunch the worker if it died on its own (counted: it should not happen)."""
        if self.worker.process.poll() is not None:
            progress(f"the worker exited by itself (status {self.worker.process.returncode}); starting it again")
            self.worker.launch(180)

    def kill_and_restart(self) -> None:
        self.worker.kill()
        self.kills += 1
        self.worker.launch(180)

    def count_day(self, day: dt.datetime) -> tuple[int, int]:
        [[count, distinct]] = self.sql(
            "SELECT count(), uniqExact(event_id) FROM hub.requests "
            f"WHERE toDate(event_time) = '{day.date().isoformat()}'")
        return int(count), int(distinct)

    def settle(self, day: dt.datetime, expected_rows: int, timeout: float = 240) -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        count = distinct = 0
        while time.monotonic() < deadline:
            self.ensure_worker()
            count, distinct = self.count_day(day)
            if count >= expected_rows:
                break
            time.sleep(0.5)
        time.sleep(3)  # anything still in flight would show up as a duplicate now
        return self.count_day(day)

    def record(self, phase: str, sent: int, expected_rows: int, expected_ids: int,
               stored: tuple[int, int], note: str) -> None:
        count, distinct = stored
        self.rows.append({"phase": phase, "sent": sent, "expected_rows": expected_rows, "stored": count,
                          "distinct_ids": distinct, "duplicated": max(count - expected_rows, 0),
                          "lost": max(expected_rows - count, expected_ids - distinct, 0), "note": note})
        progress(f"{phase}: sent {sent}, stored {count} rows, {distinct} distinct ids")

    # ---- phases --------------------------------------------------------------------------
    def phase_kills(self, total: int, kills: int, experiment: str, gateway: str) -> None:
        day = DAY["kills"]
        records = list(generate_request_legs(total, seed=self.seed, start=day))
        ids = event_ids(records)
        sent = {}

        def produce() -> None:
            def paced():
                for i, record in enumerate(records):
                    if i and i % 5_000 == 0:
                        time.sleep(0.6)
                    yield record
            sent["count"], _ = send_records(self.bootstrap, self.worker.settings.topic_requests, paced())

        producer = threading.Thread(target=produce)
        producer.start()
        for k in range(kills):
            before = self.count_day(day)[0]
            deadline = time.monotonic() + 60
            while self.count_day(day)[0] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(self.rng.uniform(0.0, 0.8))
            if k == kills // 2:
                # The breach burst, at the current wall clock (the judge works in event time).
                now = dt.datetime.now(dt.timezone.utc)
                send_records(self.bootstrap, self.worker.settings.topic_requests,
                             breach_legs(gateway, now, 100, errors=1))
                send_records(self.bootstrap, self.worker.settings.topic_requests,
                             breach_legs(gateway, now + dt.timedelta(seconds=2), 100, errors=60))
                self.alerts_expected += 1
            progress(f"SIGKILL {k + 1}/{kills} of the worker (pid {self.worker.process.pid})")
            self.kill_and_restart()
        producer.join(300)
        stored = self.settle(day, total)
        self.record("kills", sent.get("count", 0), total, len(ids), stored,
                    f"{kills} SIGKILLs: redeliveries after each restart")

    def phase_broker_restart(self, total: int) -> None:
        if self.runtime is None:
            return
        day = DAY["broker-restart"]
        records = list(generate_request_legs(total, seed=self.seed + 1, start=day))
        ids = event_ids(records)
        half = total // 2
        sent, _ = send_records(self.bootstrap, self.worker.settings.topic_requests, records[:half])
        # Stop the broker while the worker is still storing the first half.
        deadline = time.monotonic() + 60
        while self.count_day(day)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        progress("stopping the broker")
        self.runtime.stop(timeout=30)
        time.sleep(5)
        progress("starting the broker again")
        self.runtime.start(wait=True, progress=progress)
        more, _ = send_records(self.bootstrap, self.worker.settings.topic_requests, records[half:])
        stored = self.settle(day, total, timeout=300)
        self.record("broker-restart", sent + more, total, len(ids), stored,
                    "broker stopped 5 s mid-stream, started again")

    def phase_duplicate_produce(self, total: int) -> None:
        day = DAY["duplicate-produce"]
        records = list(generate_request_legs(total, seed=self.seed + 2, start=day))
        ids = event_ids(records)
        first, _ = send_records(self.bootstrap, self.worker.settings.topic_requests, records)
        again = records[:]
        self.rng.shuffle(again)
        second, _ = send_records(self.bootstrap, self.worker.settings.topic_requests, again, events_per_record=25)
        stored = self.settle(day, 2 * total)
        self.record("duplicate-produce", first + second, 2 * total, len(ids), stored,
                    "each record produced twice (shuffled, batched 25/record): stored twice by design")

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> int:
        total = 30_000 if self.short else 100_000
        kills = 2 if self.short else 4
        self.start_broker()
        self.worker = WorkerProcess.start(self.scratch / "home", self.bootstrap, timeout=180,
                                          HUB_SINK_BATCH_MAX="5000", HUB_CORRELATION_LATENESS="1")
        progress(f"worker ready (pid {self.worker.process.pid}); log {self.worker.log_path}")
        try:
            experiment, gateway = f"rel-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
            (self.scratch / "experiment.yaml").write_text(DEFINITION.format(id=experiment, gateway=gateway))
            hub_cli(self.worker.env, "experiment", "create", str(self.scratch / "experiment.yaml"))
            hub_cli(self.worker.env, "experiment", "start", experiment, "--force")
            started = time.monotonic()
            self.phase_kills(total, kills, experiment, gateway)
            self.phase_broker_restart(total // 2)
            self.phase_duplicate_produce(total // 5)
            time.sleep(2)
            [[alerts]] = self.sql("SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
                                  f"AND experiment_id = '{experiment}'")
            status = self.worker.stack.api("/v1/status")["sink"]["requests"]
            elapsed = time.monotonic() - started
        finally:
            self.worker.stop()
        return self.report(int(alerts), status, elapsed)

    def report(self, alerts_raised: int, status: dict, elapsed: float) -> int:
        header = ("phase", "sent", "expected", "stored", "distinct ids", "duplicated", "lost")
        lines = [header] + [(r["phase"], f"{r['sent']:,}", f"{r['expected_rows']:,}", f"{r['stored']:,}",
                             f"{r['distinct_ids']:,}", f"{r['duplicated']:,}", f"{r['lost']:,}") for r in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        for i, line in enumerate(lines):
            print("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(line, widths))))
            if i == 0:
                print("  ".join("-" * w for w in widths))
        for r in self.rows:
            print(f"  {r['phase']}: {r['note']}")
        print(f"worker SIGKILLs: {self.kills}; broker restarts: {1 if self.runtime else 0}; "
              f"elapsed {elapsed:.0f}s")
        print(f"last worker run: {status.get('recovered_batches', 0)} ledger chunk(s) re-inserted on assignment, "
              f"{status.get('skipped', 0)} redelivered record(s) skipped as already stored")
        print(f"alerts expected: {self.alerts_expected}, raised: {alerts_raised}")
        bad = any(r["duplicated"] or r["lost"] for r in self.rows) or alerts_raised != self.alerts_expected
        print("result: " + ("FAILED" if bad else "ok: nothing lost, nothing duplicated, alerts as expected"))
        self.summary = {"ok": not bad, "short": self.short, "seed": self.seed, "phases": self.rows,
                        "worker_sigkills": self.kills, "broker_restarts": 1 if self.runtime else 0,
                        "alerts_expected": self.alerts_expected, "alerts_raised": alerts_raised,
                        "elapsed_seconds": round(elapsed, 1),
                        "last_worker_run": {"recovered_batches": status.get("recovered_batches", 0),
                                            "skipped_redelivered": status.get("skipped", 0)}}
        return 1 if bad else 0

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.runtime is not None:
            self.runtime.stop(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="30,000 records and 2 kills instead of 100,000 and 4")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--json", metavar="PATH",
                        help="also write the counts (per phase, kills, alerts expected and raised, ok) to PATH")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="hub-reliability-"))
    suite = Suite(scratch, args.short, args.seed)
    try:
        return suite.run()
    except KeyboardInterrupt:
        suite.summary = {"ok": False, "error": "interrupted", "phases": suite.rows}
        return 130
    except Exception as exc:  # one line and the worker's log tail, not a traceback
        print(f"reliability suite failed: {exc}", file=sys.stderr)
        suite.summary = {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                         "phases": suite.rows}
        if suite.worker is not None and suite.worker.log_path.exists():
            from hub.runtime.kafka import tail
            print(tail(suite.worker.log_path, 30), file=sys.stderr)
        return 1
    finally:
        try:
            suite.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if args.json:
                Path(args.json).write_text(json.dumps(suite.summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
