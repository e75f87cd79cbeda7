"""Reliability suite: crash the worker, restart the broker, deliver twice, stop the store, and count what was stored.

    .venv/bin/python -m bench.reliability [--short] [--seed N] [--json PATH]

One Kafka broker (embedded, started here and stopped and started again mid-run; with
HUB_KAFKA_BOOTSTRAP set the broker is that cluster and the broker-restart phase is left out) and
two workers, one after the other (``hub.testing.WorkerProcess``: a real ``python -m
streams.worker`` with its own HUB_HOME, topics and consumer group):

- for the first three phases, a worker with its own embedded chDB store;
- for ``store-outage``, once that worker is stopped, a worker in server mode: a store server
  (``hub store serve`` through ``hub.testing.StoreServerProcess``, its own data directory and a
  free loopback port) owns the store and the worker stores through it (HUB_CLICKHOUSE_URL).

Each worker has an experiment of its own with an abort rule (error rate over 20% in 10 s, 50
samples at least), started before its first phase. Each phase's records carry event times on a
day of their own, so every phase is counted apart in ``hub.requests``.

Phases, in order:

1. ``kills``: records flow (paced, in a thread) while the worker is SIGKILLed several times at
   random instants and started again. Kafka redelivers everything after the last committed
   offset: these *redeliveries* (same topic, partition and offset) are what the sink must store
   once. A burst of failing requests that breaches the abort rule is sent between two kills:
   exactly one firing alert is expected for the first experiment.
2. ``broker-restart``: half the records are sent, the embedded broker is stopped while the
   worker consumes them, then started again, and the other half is sent.
3. ``duplicate-produce``: the same records are produced twice, the second time shuffled and
   packed differently (CloudEvents batches of 25 events per Kafka record instead of one). These
   are *not* redeliveries: each copy is a distinct Kafka record (its own offset), so the sink
   stores both, by design (it deduplicates by offset, never by event id). Expected: twice the rows,
   once the distinct event ids; queries that need one row per event use ``uniqExact(event_id)``
   or ``LIMIT 1 BY event_id``.
4. ``store-outage`` (server mode): records flow in three parts of a third each. The first is
   sent paced; once half of it is stored, a burst that breaches the second experiment's rule is
   sent and right after it the store server is SIGKILLed (a crash: the statement in progress is
   not finished, an insert in flight may or may not have landed, and the engine reopens its data
   directory after an unclean stop; the harder case than SIGTERM, which finishes the statement in
   progress and closes the engine cleanly). The second part is sent in slices, one a second, while the store
   is away; after 60 s (10 s with ``--short``) the store server is started again on the same
   data directory and port, and the third part is sent. The worker must not exit and no agent
   may crash: the sink treats the unreachable store as ``StoreUnavailable`` and retries the same
   chunk with back-off (0.2 s doubling to 10 s), nothing is acknowledged to Kafka meanwhile, and
   it catches up once the store answers. The breach burst's chunk is meant to be taken in as the
   store goes away (not forced; the suite reports when the alert was raised), so its ledger
   insert fails and its rollups (which leave only after the ledger entry) reach the judge after
   the restart; a chunk whose ledger entry landed but whose rows did not publishes its rollups
   again when it is retried, with the same token, and the judge counts them once. Exactly one
   firing alert is expected for the second experiment.

5. ``poison`` (on the first worker, before the store-outage phase): the poison corpus of
   ``hub.records.poison`` (good records and every kind of bad one: empty, truncated, not UTF-8,
   nested 50,000 deep, one byte over the size limit, wrong types, times outside what the hub
   stores, 101 legs on 101 days in one batch, forged ends of a draft experiment) on every topic
   the worker reads, 3 variants (20 without ``--short``), half sent before a SIGKILL of the worker
   and half after. Expected: every good record stored exactly once, every bad one a dead letter
   with a reason, no agent crash, ``/health`` ok at the end.

For every phase the suite prints records sent, rows expected, rows stored, distinct event ids,
duplicated (rows beyond the expected) and lost (rows or distinct ids short of the expected);
for each experiment the firing alerts expected and raised (rows in ``hub.alerts``; the alerts
topic is counted too and must agree); for the outage the sink retries the worker logged (by what
failed), agent crashes and worker exits, when the alert was raised relative to the outage, and
how many repeated rollups the judge dropped. Exit status 1 if any phase lost or duplicated a
record, an alert count differs, or the server-mode worker exited or had an agent crash.
``--json PATH`` also writes those counts to PATH (written on failure too, with the error). The
full suite only prints; ``tests/integration/test_reliability_short.py`` runs ``--short`` with
``--json`` as part of the test suite and checks the counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
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
from hub.testing import StoreServerProcess, WorkerProcess

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Reliability suite checkout
    scenario: Worker crashes, a broker restart and a store outage while checkout traffic flows.
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
       "duplicate-produce": _MIDNIGHT - dt.timedelta(days=2),
       "store-outage": _MIDNIGHT - dt.timedelta(days=1)}


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


def failed_attempts(log_text: str) -> dict[str, int]:
    """Sink retries in a worker log, by what failed: ``insert into <table>`` or ``query``."""
    out: dict[str, int] = {}
    for table in re.findall(r"store unavailable, retrying in [0-9.]+s: (?:insert into (\S+) failed|the store)",
                            log_text):
        key = table or "query"
        out[key] = out.get(key, 0) + 1
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
        # The store-outage phase's own worker and the store server it stores through.
        self.server_worker: WorkerProcess | None = None
        self.store: StoreServerProcess | None = None
        self.rows: list[dict] = []
        self.kills = 0
        self.alerts: list[dict] = []  # per experiment: phases, alerts expected, raised (stored), on the topic
        self.outage: dict = {}
        self.summary: dict = {}
        self.poison: dict = {}

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

    def sql(self, query: str, worker: WorkerProcess | None = None):
        return (worker or self.worker).sql(query)

    def ensure_worker(self, worker: WorkerProcess | None = None) -> None:
        """Relaunch the worker if it died on its own (it should not happen; the store-outage phase
        counts it as a failure)."""
        worker = worker or self.worker
        if worker.process.poll() is not None:
            progress(f"the worker exited by itself (status {worker.process.returncode}); starting it again")
            if worker is self.server_worker:
                self.outage["worker_exits"] = self.outage.get("worker_exits", 0) + 1
            worker.launch(180)

    def kill_and_restart(self) -> None:
        self.worker.kill()
        self.kills += 1
        self.worker.launch(180)

    def count_day(self, day: dt.datetime, worker: WorkerProcess | None = None) -> tuple[int, int]:
        [[count, distinct]] = self.sql(
            "SELECT count(), uniqExact(event_id) FROM hub.requests "
            f"WHERE toDate(event_time) = '{day.date().isoformat()}'", worker)
        return int(count), int(distinct)

    def settle(self, day: dt.datetime, expected_rows: int, timeout: float = 240,
               worker: WorkerProcess | None = None) -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        count = distinct = 0
        while time.monotonic() < deadline:
            self.ensure_worker(worker)
            count, distinct = self.count_day(day, worker)
            if count >= expected_rows:
                break
            time.sleep(0.5)
        time.sleep(3)  # anything still in flight would show up as a duplicate now
        return self.count_day(day, worker)

    @staticmethod
    def rows_acked(worker: WorkerProcess) -> int:
        """Request rows the worker's sink reports stored (its own count; -1 if it does not answer)."""
        try:
            return int(worker.stack.api("/v1/status", timeout=10)["sink"]["requests"]["stored"])
        except Exception:
            return -1

    def new_experiment(self, worker: WorkerProcess, name: str) -> tuple[str, str]:
        """Create and start an experiment with the abort rule on the worker's experiment topic."""
        experiment, gateway = f"rel-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
        path = self.scratch / f"experiment-{name}.yaml"
        path.write_text(DEFINITION.format(id=experiment, gateway=gateway))
        hub_cli(worker.env, "experiment", "create", str(path))
        hub_cli(worker.env, "experiment", "start", experiment, "--force")
        return experiment, gateway

    def firing_alerts(self, worker: WorkerProcess, experiment: str) -> int:
        [[alerts]] = self.sql("SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
                              f"AND experiment_id = '{experiment}'", worker)
        return int(alerts)

    def count_alerts(self, worker: WorkerProcess, experiment: str, phases: list[str], expected: int,
                     timeout: float = 0.0) -> dict:
        """Firing alerts of the experiment: stored in ``hub.alerts`` (waiting up to ``timeout`` for
        the expected number, then 2 s more for any extra) and, as a cross-check, on the alerts topic."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.firing_alerts(worker, experiment) < expected:
            self.ensure_worker(worker)
            time.sleep(0.5)
        time.sleep(2)
        raised = self.firing_alerts(worker, experiment)
        from hub.abort.runtime import safe_record
        from hub.experiments.log import read_log

        on_topic = []
        for _, _, value in read_log(self.bootstrap, worker.settings.topic_alerts):
            # the poison phase writes records that are no alerts to the topic: they are not counted
            record = safe_record(value, worker.settings.max_record_bytes, worker.settings.max_nesting_depth)
            if isinstance(record, dict) and (record.get("kind") == "alert" and record.get("status") == "firing"
                    and record.get("experiment_id") == experiment):
                on_topic.append(record)
        entry = {"experiment": experiment, "phases": phases, "expected": expected, "raised": raised,
                 "on_topic": len(on_topic), "times": [r.get("time") for r in on_topic]}
        self.alerts.append(entry)
        return entry

    def record(self, phase: str, sent: int, expected_rows: int, expected_ids: int,
               stored: tuple[int, int], note: str) -> None:
        count, distinct = stored
        self.rows.append({"phase": phase, "sent": sent, "expected_rows": expected_rows, "stored": count,
                          "distinct_ids": distinct, "duplicated": max(count - expected_rows, 0),
                          "lost": max(expected_rows - count, expected_ids - distinct, 0), "note": note})
        progress(f"{phase}: sent {sent}, stored {count} rows, {distinct} distinct ids")

    # ---- phases --------------------------------------------------------------------------
    def phase_kills(self, total: int, kills: int, experiment: str, gateway: str) -> int:
        """Returns the alerts expected (one breach burst)."""
        bursts = 0
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
                bursts += 1
            progress(f"SIGKILL {k + 1}/{kills} of the worker (pid {self.worker.process.pid})")
            self.kill_and_restart()
        producer.join(300)
        stored = self.settle(day, total)
        self.record("kills", sent.get("count", 0), total, len(ids), stored,
                    f"{kills} SIGKILLs: redeliveries after each restart")
        return bursts

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

    def phase_store_outage(self, total: int, outage: float) -> None:
        """Server mode: the store server is SIGKILLed for ``outage`` seconds while records flow."""
        day = DAY["store-outage"]
        records = list(generate_request_legs(total, seed=self.seed + 3, start=day))
        ids = event_ids(records)
        self.store = StoreServerProcess(self.scratch / "store")
        self.store.launch(60)
        progress(f"store server ready (pid {self.store.process.pid}) at {self.store.url}; log {self.store.log_path}")
        worker = self.server_worker = WorkerProcess.start(
            self.scratch / "home-server", self.bootstrap, timeout=180, HUB_CLICKHOUSE_URL=self.store.url,
            HUB_SINK_BATCH_MAX="5000", HUB_CORRELATION_LATENESS="1")
        progress(f"server-mode worker ready (pid {worker.process.pid}); log {worker.log_path}")
        log_start = worker.log_path.stat().st_size
        experiment, gateway = self.new_experiment(worker, "store-outage")
        topic = worker.settings.topic_requests
        third = total // 3
        before, during, after = records[:third], records[third:2 * third], records[2 * third:]
        down, up = threading.Event(), threading.Event()
        sent: dict = {}

        def produce() -> None:
            def paced(part):
                for i, record in enumerate(part):
                    if i and i % 1_000 == 0:
                        time.sleep(0.3)
                    yield record

            count, _ = send_records(self.bootstrap, topic, paced(before))
            if not down.wait(600):
                return
            # Spread over the outage: one slice a second while the store is away.
            slices = max(int(outage), 1)
            size = -(-len(during) // slices)
            for i in range(slices):
                count += send_records(self.bootstrap, topic, during[i * size:(i + 1) * size])[0]
                pause = sent["down_at"] + (i + 1) * outage / slices - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            sent["during"] = count - len(before)
            if not up.wait(600):
                return
            count += send_records(self.bootstrap, topic, paced(after))[0]
            sent["count"] = count

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        # Stop the store while the first part is being stored (inserts in flight)...
        deadline = time.monotonic() + 120
        while self.count_day(day, worker)[0] < third // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # ...right after a burst that breaches the rule: the worker takes it in while the store
        # goes away, so its chunk's ledger insert (after which the rollups leave) fails and is retried.
        now = dt.datetime.now(dt.timezone.utc)
        send_records(self.bootstrap, topic, breach_legs(gateway, now, 100, errors=1))
        send_records(self.bootstrap, topic, breach_legs(gateway, now + dt.timedelta(seconds=2), 100, errors=60))
        progress(f"SIGKILL of the store server (pid {self.store.process.pid}) for {outage:.0f}s")
        self.store.kill()
        down_wall = time.time()
        sent["down_at"] = time.monotonic()
        down.set()
        acked_at_kill = self.rows_acked(worker)
        while time.monotonic() < sent["down_at"] + outage:
            time.sleep(0.5)
        # The worker must ride the outage out: an exit is counted (and fails the suite); it could
        # not start again before the store is back anyway.
        acked_while_down = self.rows_acked(worker) - acked_at_kill
        progress("starting the store server again (same data directory and port)")
        self.store.launch(60)
        up_wall = time.time()
        up.set()
        self.ensure_worker(worker)
        producer.join(600)
        if "count" not in sent:
            raise RuntimeError("the producer of the store-outage phase did not finish")
        stored = self.settle(day, total, timeout=300, worker=worker)
        alerts = self.count_alerts(worker, experiment, ["store-outage"], 1, timeout=120)
        status = worker.stack.api("/v1/status", timeout=10)
        with open(worker.log_path, "rb") as log:
            log.seek(log_start)
            text = log.read().decode(errors="replace")
        fired = [dt.datetime.fromisoformat(t).timestamp() for t in alerts["times"] if t]
        when = ("no alert" if not fired else
                "before the store went down" if fired[0] < down_wall else
                "while the store was down" if fired[0] < up_wall else
                f"{fired[0] - up_wall:.1f}s after the store came back")
        self.outage.update({
            "signal": "SIGKILL", "restarted_after_seconds": outage,
            "unanswered_seconds": round(up_wall - down_wall, 1), "records_sent_while_down": sent["during"],
            "sink_retries_logged": text.count("store unavailable, retrying"),
            # What each retried attempt failed on: an insert (by table) or a query (the pairs
            # sink's look-up, a partition's recovery).
            "failed_attempts_logged": failed_attempts(text),
            # Faust logs "Crashed reason=..." when an agent raises (a rebalance's CancelledError aside).
            "agent_crashes_logged": len(re.findall(r"Crashed reason=(?!CancelledError)", text)),
            "worker_exits": self.outage.get("worker_exits", 0),
            "judge_duplicate_rollups": status["judge"]["duplicate_rollups"],
            "alert_raised": when, "rows_stored_while_down": acked_while_down,
        })
        self.record("store-outage", sent["count"], total, len(ids), stored,
                    f"server mode: store server SIGKILLed, started again after {outage:.0f} s on the same data "
                    f"and port (answering {self.outage['unanswered_seconds']:.0f} s after the kill), "
                    f"{sent['during']:,} records sent meanwhile")

    def phase_poison(self, copies: int) -> None:
        """The poison corpus (``hub.records.poison``) on every topic the worker reads, half of it
        before a SIGKILL of the worker and half after; then exact counts: good records stored once,
        bad ones dead letters with a reason, no agent crash, the worker healthy."""
        from hub.records.poison import build_corpus, differences, expected_of, send_corpus, wait_for_outcome

        worker = self.worker
        corpus = build_corpus(worker.settings.max_record_bytes, seed=self.seed, copies=copies)
        expected = expected_of(corpus)
        progress(f"poison: {len(corpus):,} records on {len(expected.dead_letters)} topics, "
                 f"{sum(expected.rows.values()):,} rows and {sum(expected.dead_letters.values()):,} dead letters expected")
        half = len(corpus) // 2
        send_corpus(self.bootstrap, worker.settings, corpus[:half])
        time.sleep(self.rng.uniform(1.0, 3.0))
        self.kill_and_restart()
        send_corpus(self.bootstrap, worker.settings, corpus[half:])
        seen = wait_for_outcome(worker.sql, worker.settings, expected, timeout=420)
        problems = differences(seen, expected)
        text = worker.log_path.read_text(errors="replace")
        crashes = len(re.findall(r"Crashed reason=(?!CancelledError)", text))
        try:
            health = worker.stack.api("/health", timeout=10)
        except Exception as exc:  # the endpoint itself failing is a finding
            health = {"status": f"unanswered: {exc}"}
        want = sum(expected.rows.values()) + sum(expected.dead_letters.values())
        got_rows = sum(seen["rows"].get(t, 0) for t in expected.rows)
        got_dead = sum(seen["dead_letters"].get(t, 0) for t in expected.dead_letters)
        lost = sum(max(0, n - seen["rows"].get(t, 0)) for t, n in expected.rows.items()) + \
            sum(max(0, n - seen["dead_letters"].get(t, 0)) for t, n in expected.dead_letters.items())
        duplicated = sum(max(0, seen["rows"].get(t, 0) - n) for t, n in expected.rows.items()) + \
            sum(max(0, seen["dead_letters"].get(t, 0) - n) for t, n in expected.dead_letters.items())
        self.poison = {"records": len(corpus), "expected_rows": expected.rows, "stored_rows": seen["rows"],
                       "expected_dead_letters": expected.dead_letters, "dead_letters": seen["dead_letters"],
                       "dead_letters_without_reason": seen["dead_letters_without_reason"],
                       "problems": problems, "agent_crashes_logged": crashes, "health": health.get("status")}
        self.rows.append({"phase": "poison", "sent": len(corpus), "expected_rows": want,
                          "stored": got_rows + got_dead, "distinct_ids": got_rows + got_dead,
                          "duplicated": duplicated, "lost": lost,
                          "note": f"{len(corpus):,} records on every topic (good, malformed, oversized, nested "
                                  f"{50_000:,} deep, out-of-range times, wrong types, forged lifecycle events), "
                                  f"worker SIGKILLed in the middle: {got_rows:,} rows and {got_dead:,} dead letters "
                                  f"(expected {sum(expected.rows.values()):,} and {sum(expected.dead_letters.values()):,}); "
                                  f"{crashes} agent crash(es); health {health.get('status')}"
                                  + ("; " + "; ".join(problems) if problems else "")})

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> int:
        total = 30_000 if self.short else 100_000
        kills = 2 if self.short else 4
        outage = 10.0 if self.short else 60.0
        self.start_broker()
        started = time.monotonic()
        self.worker = WorkerProcess.start(self.scratch / "home", self.bootstrap, timeout=180,
                                          HUB_SINK_BATCH_MAX="5000", HUB_CORRELATION_LATENESS="1",
                                          # the poison phase's 101 days of legs outlive the TTL while counted
                                          HUB_TTL_DAYS="400")
        progress(f"worker ready (pid {self.worker.process.pid}); log {self.worker.log_path}")
        try:
            experiment, gateway = self.new_experiment(self.worker, "embedded")
            bursts = self.phase_kills(total, kills, experiment, gateway)
            self.phase_broker_restart(total // 2)
            self.phase_duplicate_produce(total // 5)
            self.phase_poison(3 if self.short else 20)
            self.count_alerts(self.worker, experiment, ["kills", "broker-restart", "duplicate-produce"], bursts)
            status = self.worker.stack.api("/v1/status")["sink"]["requests"]
        finally:
            self.worker.stop()
        # Server mode, with a worker and a store server of its own (the embedded worker is stopped:
        # two cores).
        try:
            self.phase_store_outage(total * 2 // 5, outage)
        finally:
            if self.server_worker is not None:
                self.server_worker.stop()
            if self.store is not None:
                self.store.stop()
        return self.report(status, time.monotonic() - started)

    def report(self, status: dict, elapsed: float) -> int:
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
        o = self.outage
        print(f"worker SIGKILLs: {self.kills}; broker restarts: {1 if self.runtime else 0}; "
              f"store server outages: 1 ({o['signal']}, {o['unanswered_seconds']:.0f}s); elapsed {elapsed:.0f}s")
        print(f"last worker run: {status.get('recovered_batches', 0)} ledger chunk(s) re-inserted on assignment, "
              f"{status.get('skipped', 0)} redelivered record(s) skipped as already stored")
        attempts = ", ".join(f"{what} {n}" for what, n in sorted(o["failed_attempts_logged"].items()))
        print(f"store outage: {o['sink_retries_logged']} sink retries logged ({attempts or 'none'}), "
              f"{o['agent_crashes_logged']} agent crash(es), {o['worker_exits']} worker exit(s); "
              f"alert raised {o['alert_raised']}; {o['judge_duplicate_rollups']} repeated rollup(s) "
              "dropped by the judge")
        expected = sum(a["expected"] for a in self.alerts)
        raised = sum(a["raised"] for a in self.alerts)
        for a in self.alerts:
            print(f"alerts of {a['experiment']} ({', '.join(a['phases'])}): expected {a['expected']}, "
                  f"raised {a['raised']} (on the alerts topic: {a['on_topic']})")
        print(f"alerts expected: {expected}, raised: {raised}")
        bad = (any(r["duplicated"] or r["lost"] for r in self.rows)
               or any(a["raised"] != a["expected"] or a["on_topic"] != a["expected"] for a in self.alerts)
               or o["worker_exits"] or o["agent_crashes_logged"]
               or (self.poison and (self.poison["problems"] or self.poison["agent_crashes_logged"]
                                    or self.poison["health"] != "ok")))
        print("result: " + ("FAILED" if bad else "ok: nothing lost, nothing duplicated, alerts as expected"))
        self.summary = {"ok": not bad, "short": self.short, "seed": self.seed, "phases": self.rows,
                        "worker_sigkills": self.kills, "broker_restarts": 1 if self.runtime else 0,
                        "store_outages": 1, "store_outage": o, "poison": self.poison,
                        "alerts_expected": expected, "alerts_raised": raised, "alerts": self.alerts,
                        "elapsed_seconds": round(elapsed, 1),
                        "last_worker_run": {"recovered_batches": status.get("recovered_batches", 0),
                                            "skipped_redelivered": status.get("skipped", 0)}}
        return 1 if bad else 0

    def close(self) -> None:
        for process in (self.worker, self.server_worker, self.store):
            if process is not None:
                process.stop()
        if self.runtime is not None:
            self.runtime.stop(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="30,000 records, 2 kills and a 10 s store outage instead of 100,000, 4 and 60 s")
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
        from hub.runtime.kafka import tail
        for process in (suite.server_worker or suite.worker, suite.store):
            if process is not None and process.log_path.exists():
                print(tail(process.log_path, 30), file=sys.stderr)
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
