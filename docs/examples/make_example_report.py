"""Make the example after-action report in docs/examples/report/ from a real, compressed run.

    .venv/bin/python docs/examples/make_example_report.py [--out docs/examples/report] [--seconds 12]

It starts an embedded Kafka broker and a worker under a temporary home (nothing of yours is
touched), creates the experiment of ``examples/experiments/patient-api-db-failover.yaml`` under
a unique id, and drives it through the CLI as a gameday team would: prerequisites checked,
baseline, the database primary stopped (injection), observation, recovery, with notes and
surprises written by the people in the room. Gateway traffic flows the whole time, with known
effects: while the fault is active writes on ``POST /patients`` fail about a quarter of the time
and slow down, reads slow a little, and the shadow replica answers differently for some
allergy reads. Then ``hub report`` writes the report. Phases last ``--seconds`` each instead of
the planned minutes (about a minute in all).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hub.producer import send_records  # noqa: E402
from hub.records.generate import encode_event  # noqa: E402
from hub.records.request_leg import RequestLeg, new_event  # noqa: E402
from hub.runtime.kafka import KafkaRuntime  # noqa: E402
from hub.settings import load_settings  # noqa: E402
from hub.testing import WorkerProcess  # noqa: E402

DEFINITION = ROOT / "examples" / "experiments" / "patient-api-db-failover.yaml"
# The hub command line, with the report and findings commands registered even where the entry
# point does not list them yet.
CLI = ("import sys, hub.cli.main as m; "
       "m.COMMAND_MODULES += tuple(n for n in ('hub.cli.report', 'hub.cli.findings') if n not in m.COMMAND_MODULES); "
       "sys.exit(m.main(sys.argv[1:]))")
ROUTES = (("GET", "/patients/{id}", 0.62), ("GET", "/patients/{id}/allergies", 0.23), ("POST", "/patients", 0.15))


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free pair of ports")


def one_second(rng: random.Random, at: dt.datetime, per_second: int, fault: bool) -> list[tuple[bytes, bytes]]:
    """A second of edge-gw traffic to patient-api, with the fault's effects when ``fault``."""
    out = []
    for i in range(per_second):
        method, route = rng.choices([(m, r) for m, r, _ in ROUTES], weights=[w for _, _, w in ROUTES])[0]
        when = at + dt.timedelta(seconds=i / per_second)
        latency = rng.lognormvariate(3.6, 0.45)  # ~37 ms median
        status = 500 if rng.random() < 0.002 else (201 if method == "POST" else 200)
        if fault and route == "/patients":
            latency = rng.lognormvariate(6.2, 0.6)  # writes wait for the new primary
            if rng.random() < 0.26:
                status = 503
        elif fault:
            latency *= rng.uniform(1.2, 2.5)  # reads hit the standby's cold cache
        body = hashlib.sha1(f"{route}:{i % 40}".encode()).hexdigest()[:16]
        cid = uuid.uuid4().hex
        primary = RequestLeg(correlation_id=cid, leg="primary", gateway="edge-gw", route=route, method=method,
                             backend="patients-db", status=status, latency_ms=round(latency, 1), event_time=when,
                             response_hash=body, request_bytes=420, response_bytes=1800)
        out.append((cid.encode(), encode_event(new_event(primary, source="/gateways/edge-gw"))))
        if method == "GET" and rng.random() < 0.10:  # 10% of safe reads shadowed to the replica
            differs = route.endswith("allergies") and rng.random() < (0.12 if fault else 0.05)
            shadow = RequestLeg(correlation_id=cid, leg="shadow", gateway="edge-gw", route=route, method=method,
                                backend="patients-db-replica-b", status=200, latency_ms=round(latency * 1.1, 1),
                                event_time=when, response_hash=("stale-" + body[:10]) if differs else body)
            out.append((cid.encode(), encode_event(new_event(shadow, source="/gateways/edge-gw"))))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "examples" / "report"), help="folder of the report")
    parser.add_argument("--seconds", type=int, default=12, help="real seconds per phase (default 12)")
    parser.add_argument("--rate", type=int, default=60, help="requests per second (default 60)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="gameday-example-"))
    env = {"HUB_HOME": str(home / "kafka-home"), "HUB_KAFKA_BOOTSTRAP": ""}
    broker_settings = load_settings(env).with_overrides(home=home / "kafka-home", kafka_port=free_port_pair(),
                                                         kafka_bootstrap="")
    runtime = KafkaRuntime(broker_settings)
    print(f"starting a broker on {broker_settings.bootstrap}", flush=True)
    runtime.start(wait=True, progress=lambda line: print(f"  {line}", flush=True))
    worker = None
    try:
        worker = WorkerProcess.start(home / "hub", runtime.bootstrap, HUB_CORRELATION_LATENESS="1")
        topic = worker.settings.topic_requests
        experiment = f"patient-api-db-failover-{dt.date.today():%Y%m%d}-{uuid.uuid4().hex[:4]}"
        rng = random.Random(20261130)

        def hub(*argv: str, actor: str = "amara.okafor") -> str:
            result = subprocess.run([sys.executable, "-c", CLI, *argv], env={**worker.env, "HUB_ACTOR": actor},
                                    capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, cwd=ROOT)
            if result.returncode != 0:
                raise SystemExit(f"hub {' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
            print(f"$ hub {' '.join(argv)}\n{result.stdout.rstrip()}", flush=True)
            return result.stdout

        # Gateway traffic flows the whole time, second by second of event time, whatever the CLI is doing.
        state = {"fault": False, "stop": False}

        def flow() -> None:
            second = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            while not state["stop"]:
                send_records(runtime.bootstrap, topic, one_second(rng, second, args.rate, state["fault"]))
                second += dt.timedelta(seconds=1)
                time.sleep(max(0.0, (second - dt.datetime.now(dt.timezone.utc)).total_seconds()))

        def traffic(seconds: float, fault: bool) -> None:
            state["fault"] = fault
            time.sleep(seconds)

        sender = threading.Thread(target=flow, daemon=True)
        hub("experiment", "create", str(DEFINITION), "--id", experiment)
        hub("experiment", "check", experiment, "--all-done", actor="priya.raman")
        hub("experiment", "start", experiment)
        sender.start()
        traffic(args.seconds, fault=False)
        hub("note", experiment, "Connection-pool reconnect counters visible per host on the room dashboard",
            "--tag", "patients-db", actor="priya.raman")
        hub("experiment", "phase", experiment, "injection")
        traffic(2, fault=False)
        hub("experiment", "inject", experiment, "--action", "stop-instance", "--target", "patients-db-primary-zone-a",
            "--param", "zone=eu-west-1a", "--param", "instance=patients-db-1", "--fault-id", "stop-db-primary",
            "--injector", "aws-fis", actor="jonas.weber")
        traffic(args.seconds, fault=True)
        hub("note", experiment, "Writes kept failing after the standby was promoted: the write pool held on to "
            "connections to the old primary", "--surprise", "--expected",
            "POST /patients returns 503 only during promotion (under 60 s) and recovers with it",
            "--actual", "about a quarter of writes failed with 503 and p99 write latency passed 1.5 s until the "
            "fault was removed; reads were barely affected", "--tag", "patient-api", "--tag", "follow-up",
            actor="lucas.moreau")
        hub("experiment", "phase", experiment, "observation")
        traffic(args.seconds // 2, fault=True)
        hub("experiment", "remove", experiment, "stop-db-primary", actor="jonas.weber")
        traffic(args.seconds // 2, fault=False)
        hub("note", experiment, "Shadow replica answered differently for allergy reads", "--surprise",
            "--expected", "shadow mismatch rate under 1% (the replica is a byte-for-byte copy)",
            "--actual", "about 5% of shadowed GET /patients/{id}/allergies answers differed, more during the "
            "failover: replication lag on the allergies table", "--tag", "patients-db-replica-b",
            actor="priya.raman")
        hub("experiment", "phase", experiment, "recovery")
        traffic(args.seconds, fault=False)
        hub("note", experiment, "Failback runbook step 4 still names the old primary's hostname",
            "--tag", "runbook", "--tag", "follow-up", actor="hannah.lindqvist")
        state["stop"] = True
        sender.join(30)
        hub("experiment", "complete", experiment, "--summary",
            "Failover itself took 40 s but the write pool did not refresh its connections; fix pool refresh before "
            "the production run.")
        total = f"SELECT count() FROM hub.experiment_events WHERE experiment_id = '{experiment}'"
        worker.wait_for(total, 14, timeout=60)
        time.sleep(2)  # let the last request legs land
        out = Path(args.out)
        for old in out.glob("*.png"):
            old.unlink()
        hub("report", experiment, "--out", str(out))
        print(f"example report of {experiment} in {out}")
    finally:
        if worker is not None:
            worker.stop()
        runtime.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
