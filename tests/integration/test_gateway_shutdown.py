"""Stopping `hub gateway` the way Docker, Kubernetes and systemd do (SIGTERM) loses no leg: every
request answered before the signal has its leg on Kafka when the process has exited, and every
shadow-selected request its shadow leg and its pair (compared, or dropped at stop)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.experiments.log import read_log
from hub.runtime.topics import ensure_topics
from hub.testing import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        body = json.dumps({"id": self.path.rsplit("/", 1)[-1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_sigterm_flushes_every_leg_before_the_gateway_exits(tmp_path, kafka_bootstrap):
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    topic = f"gateway-legs-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 2})
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"gateway: {{name: edge-test, listen: '127.0.0.1:{port}'}}\n"
        f"backends: {{patients-v1: {{url: 'http://127.0.0.1:{backend.server_address[1]}'}}}}\n"
        "routes:\n  - {path: '/patients/{id}', backend: patients-v1}\n"
        f"emit: {{bootstrap: '{kafka_bootstrap}', requests_topic: {topic}}}\n")
    gateway = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "gateway", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert "listening on" in gateway.stdout.readline()
        sent = 400
        for i in range(sent):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/patients/{i}", timeout=10) as response:
                assert response.status == 200
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0, gateway.stderr.read()
        # one line says the gateway stopped, and what it did
        assert "stopped in" in (last := gateway.stdout.read()) and f"{sent} requests" in last, last
    finally:
        if gateway.poll() is None:
            gateway.kill()
        backend.shutdown()
    legs = []
    for _, _, value in read_log(kafka_bootstrap, topic):
        doc = json.loads(value)
        legs.extend(doc if isinstance(doc, list) else [doc])
    assert len(legs) == sent
    assert all(leg["data"]["correlation_id"] for leg in legs)


class SlowBackend(Backend):
    def do_GET(self):  # noqa: N802
        __import__("time").sleep(1.0)
        super().do_GET()


def test_sigterm_during_a_shadowed_burst_leaves_every_selected_request_a_pair(tmp_path, kafka_bootstrap):
    """Every shadow-selected request ends as a pair (compared, or dropped and counted), with its
    shadow leg, even when SIGTERM comes while the shadows still queue behind a slow shadow backend."""
    primary = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    shadow = ThreadingHTTPServer(("127.0.0.1", 0), SlowBackend)
    for server in (primary, shadow):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    legs_topic, pairs_topic = f"gateway-legs-{uuid.uuid4().hex[:8]}", f"gateway-pairs-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {legs_topic: 2, pairs_topic: 2})
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"gateway: {{name: edge-stop, listen: '127.0.0.1:{port}', shutdown_timeout_s: 1}}\n"
        f"backends: {{v1: {{url: 'http://127.0.0.1:{primary.server_address[1]}'}},"
        f" v2: {{url: 'http://127.0.0.1:{shadow.server_address[1]}'}}}}\n"
        "routes:\n  - {path: '/patients/{id}', backend: v1, shadow: {backend: v2, percent: 100}}\n"
        "bulkhead: {max_concurrent: 4, max_queue: 500}\n"
        f"emit: {{bootstrap: '{kafka_bootstrap}', requests_topic: {legs_topic}, pairs_topic: {pairs_topic}}}\n")
    gateway = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "gateway", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    answered = []

    def client(start: int):
        for i in range(start, start + 30):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/patients/{i}", timeout=10) as response:
                    answered.append(response.status)
            except OSError:
                return  # the gateway stopped listening

    try:
        assert "listening on" in gateway.stdout.readline()
        clients = [threading.Thread(target=client, args=(k * 100,)) for k in range(4)]
        for c in clients:
            c.start()
        while len(answered) < 40:
            __import__("time").sleep(0.01)
        gateway.send_signal(signal.SIGTERM)  # during the burst
        for c in clients:
            c.join(30)
        assert gateway.wait(60) == 0, gateway.stderr.read()
    finally:
        if gateway.poll() is None:
            gateway.kill()
        primary.shutdown()
        shadow.shutdown()

    def events(topic):
        out = []
        for _, _, value in read_log(kafka_bootstrap, topic):
            doc = json.loads(value)
            out.extend(doc if isinstance(doc, list) else [doc])
        return [e["data"] for e in out]

    legs, pairs = events(legs_topic), events(pairs_topic)
    primaries = {leg["correlation_id"] for leg in legs if leg["leg"] == "primary"}
    shadows = {leg["correlation_id"] for leg in legs if leg["leg"] == "shadow"}
    assert len(primaries) >= 40
    assert {p["correlation_id"] for p in pairs} == shadows == primaries
    assert len(pairs) == len(primaries)  # one pair each
    outcomes = {p["outcome"] for p in pairs}
    assert outcomes <= {"match", "latency_regression", "dropped_by_bulkhead"} and "dropped_by_bulkhead" in outcomes
