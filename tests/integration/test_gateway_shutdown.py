"""Stopping `hub gateway` the way Docker, Kubernetes and systemd do (SIGTERM) loses no leg: every
request answered before the signal has its leg on Kafka when the process has exited."""

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

pytestmark = [pytest.mark.kafka]


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
