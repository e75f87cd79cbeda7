"""Abort conditions on the stream: a breach at a known instant fires one alert with its reasons,
aborts the experiment on its timeline and calls the halt webhook (a real HTTP server on loopback)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.producer import send_records
from hub.records.generate import encode_event
from hub.records.request_leg import RequestLeg, new_event
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

DEFINITION = textwrap.dedent("""
    id: {id}
    title: Checkout survives a zone outage
    scenario: Stop zone b while checkout traffic flows.
    hypothesis: Errors stay under 20%.
    expected_outcome: No abort.
    steady_state:
      - {{name: errors, sli: error_rate, source: requests, tolerance: {{max: 0.2}}}}
    environment: {{name: staging, kind: non-live, risk: low}}
    targets: {{gateways: [{gateway}]}}
    phases: [{{name: baseline, planned_minutes: 1}}, {{name: injection, planned_minutes: 1}}]
    abort_conditions:
      - {{name: checkout-errors, measurement: error_rate, window: 10s, comparison: ">", threshold: 0.2,
          min_samples: 50, severity: abort}}
      - {{name: slow-checkout, measurement: latency_p99, window: 10s, comparison: ">", threshold: 5000,
          severity: warn}}
""")


class Recorder(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.calls.append((self.path, json.loads(body), time.time()))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    Recorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.calls
    server.shutdown()


def legs(gateway, start, count, errors, spread=1.0):
    out = []
    for i in range(count):
        cid = uuid.uuid4().hex
        leg = RequestLeg(correlation_id=cid, leg="primary", gateway=gateway, route="/checkout", method="POST",
                         backend="checkout-v1", status=503 if i % count < errors else 200, latency_ms=20.0,
                         event_time=start + dt.timedelta(seconds=spread * i / count))
        out.append((cid.encode(), encode_event(new_event(leg, source="/test"))))
    return out


def hub(env, *args):
    result = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_breach_fires_one_alert_aborts_the_experiment_and_calls_the_halt_webhook(tmp_path, kafka_bootstrap,
                                                                                      recorder):
    url, calls = recorder
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_HALT_WEBHOOKS=f"{url}/halt",
                             HUB_HALT_WEBHOOKS_ALL_EXPERIMENTS="1", HUB_CHAT_WEBHOOK=f"{url}/chat", HUB_ALERTMANAGER_URL=url,
                             HUB_CORRELATION_LATENESS="1") as worker:
        env, topic = worker.env, worker.settings.topic_requests
        experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
        (tmp_path / "e.yaml").write_text(DEFINITION.format(id=experiment, gateway=gateway))
        hub(env, "experiment", "create", str(tmp_path / "e.yaml"))
        hub(env, "experiment", "start", experiment, "--force")
        now = dt.datetime.now(dt.timezone.utc)
        send_records(kafka_bootstrap, topic, legs(gateway, now, 100, errors=1))
        assert worker.wait_for(f"SELECT count() FROM hub.requests WHERE experiment_id = '{experiment}'", 100) == 100
        time.sleep(1.5)
        assert worker.sql(f"SELECT count() FROM hub.alerts WHERE experiment_id = '{experiment}'") == [[0]]

        breach_at = now + dt.timedelta(seconds=2)
        sent = time.time()
        send_records(kafka_bootstrap, topic, legs(gateway, breach_at, 100, errors=60, spread=0.5))
        # the same breach again, in the same window: no second alert
        send_records(kafka_bootstrap, topic, legs(gateway, breach_at + dt.timedelta(seconds=1), 100, errors=60,
                                                  spread=0.5))
        firing = "SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' " \
                 f"AND experiment_id = '{experiment}'"
        assert worker.wait_for(firing, 1, timeout=30) == 1
        deadline = time.time() + 30
        while time.time() < deadline and not any(path == "/halt" for path, _, _ in calls):
            time.sleep(0.1)
        time.sleep(3)  # let any duplicate show itself
        assert worker.sql(firing) == [[1]]
        [[rule, severity, observed, threshold, samples, examples, message, top]] = worker.sql(
            "SELECT rule, severity, observed, threshold, samples, example_request_ids, message, top_contributors "
            f"FROM hub.alerts WHERE kind = 'alert' AND experiment_id = '{experiment}'")
        assert (rule, severity, threshold) == ("checkout-errors", "abort", 0.2)
        assert observed > 0.2 and samples >= 50 and len(examples) >= 1
        assert "checkout-errors" in message and json.loads(top)[0]["route"] == "/checkout"

        halts = [body for path, body, _ in calls if path == "/halt"]
        assert len(halts) == 1 and halts[0]["experiment_id"] == experiment and halts[0]["action"] == "halt"
        assert any(path == "/chat" and "checkout-errors" in body["text"] for path, body, _ in calls)
        alertmanager = [body for path, body, _ in calls if path == "/api/v2/alerts"]
        assert alertmanager and alertmanager[0][0]["labels"]["alertname"] == "checkout-errors"

        shown = json.loads(hub(env, "experiment", "show", experiment, "--json"))
        assert shown["status"] == "aborted" and "checkout-errors" in shown["abort_reason"]
        assert worker.wait_for(
            f"SELECT countIf(action = 'halt' AND ok) FROM hub.alerts WHERE experiment_id = '{experiment}'",
            1, timeout=30) == 1
        screen = hub(env, "experiment", "watch", experiment, "--once")
        assert "ABORTED" in screen and "checkout-errors" in screen and "FIRING" in screen and "firing" in screen
        print(f"breach sent to halt webhook called: {min(t for p, _, t in calls if p == '/halt') - sent:.2f}s")


HELD = DEFINITION.replace('min_samples: 50, severity: abort}}', 'min_samples: 50, severity: abort, for: 4s}}')


def test_a_breach_straddling_a_worker_kill_fires_once_from_its_first_second(tmp_path, kafka_bootstrap):
    worker = WorkerProcess.start(tmp_path / "home", kafka_bootstrap, HUB_CORRELATION_LATENESS="1")
    try:
        env, topic = worker.env, worker.settings.topic_requests
        experiment, gateway = f"exp-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
        (tmp_path / "e.yaml").write_text(HELD.format(id=experiment, gateway=gateway))
        hub(env, "experiment", "create", str(tmp_path / "e.yaml"))
        hub(env, "experiment", "start", experiment, "--force")
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=1)
        # seconds 0..2 breach; the rule needs 4 s of breach before it fires
        send_records(kafka_bootstrap, topic, legs(gateway, start, 150, errors=90, spread=2.9))
        deadline = time.time() + 60
        breaching = None
        while time.time() < deadline and not breaching:
            rules = worker.stack.api(f"/v1/experiments/{experiment}/rules")
            breaching = next(r for r in rules if r["rule"] == "checkout-errors")["breaching_since"]
            time.sleep(0.2)
        assert breaching is not None
        assert worker.sql(f"SELECT count() FROM hub.alerts WHERE experiment_id = '{experiment}'") == [[0]]
        worker.kill()
        worker.launch()
        # seconds 3..6 breach on: the hold completes across the restart
        send_records(kafka_bootstrap, topic, legs(gateway, start + dt.timedelta(seconds=3), 200, errors=120,
                                                  spread=3.9))
        firing = ("SELECT count() FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
                  f"AND experiment_id = '{experiment}'")
        assert worker.wait_for(firing, 1, timeout=60) == 1
        time.sleep(3)
        [[count, breach_since]] = worker.sql(
            "SELECT count(), any(alert_id) FROM hub.alerts WHERE kind = 'alert' AND status = 'firing' "
            f"AND experiment_id = '{experiment}'")
        assert count == 1
        # The breach began before the kill; without the rebuilt windows it would start after it.
        began = int(dt.datetime.fromisoformat(breaching).timestamp())
        assert began < int((start + dt.timedelta(seconds=3)).timestamp())
        assert breach_since == f"{experiment}/checkout-errors/{began}"
    finally:
        worker.stop()
