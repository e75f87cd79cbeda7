"""The real Vegeta (built from its Go module by this module's set-up, once per version, into
``HUB_TEST_CACHE``, default ``~/.cache/gameday-hub``): ``vegeta attack`` writes its own binary
results format, which ``hub import vegeta`` refuses with one line saying to run ``vegeta encode``
first; the encoded results are imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.test_integrations_store import BOOT

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"


@pytest.fixture(scope="module")
def vegeta() -> str:
    cache = Path(os.environ.get("HUB_TEST_CACHE") or Path.home() / ".cache" / "gameday-hub")
    target = cache / ("vegeta-" + VEGETA.rsplit("@", 1)[1])
    binary = target / "vegeta"
    if not binary.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        partial = target.with_name(target.name + f".part-{os.getpid()}")
        subprocess.run([go, "install", VEGETA], env={**os.environ, "GOBIN": str(partial)}, check=True, timeout=900,
                       cwd=cache if cache.exists() else None)
        try:
            partial.rename(target)
        except OSError:  # built meanwhile by another run
            assert binary.exists()
    return str(binary)


class _Patients(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"id": 1, "name": "patient 1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_vegeta_binary_results_are_refused_with_the_encode_step_and_encoded_ones_imported(vegeta, kafka_bootstrap,
                                                                                           tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Patients)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        targets = tmp_path / "targets.txt"
        targets.write_text(f"GET http://127.0.0.1:{server.server_address[1]}/patients/1\n")
        results = tmp_path / "results.bin"
        with results.open("wb") as out:
            subprocess.run([vegeta, "attack", "-rate", "20/s", "-duration", "1s", "-targets", str(targets)],
                           stdout=out, check=True, timeout=60)
    finally:
        server.shutdown()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_HOME=str(tmp_path / "home"), HUB_KAFKA_BOOTSTRAP=kafka_bootstrap,
               HUB_TOPIC_REQUESTS=f"requests-{uuid.uuid4().hex[:6]}")
    experiment = f"exp-{uuid.uuid4().hex[:6]}"

    def hub(*args):
        return subprocess.run([sys.executable, "-c", BOOT, *args], env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    refused = hub("import", "vegeta", str(results), "--experiment", experiment)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "hub: error: line 1: binary data, not JSON: this is vegeta's own results format (what `vegeta attack` "
        f"writes); run `vegeta encode` first: vegeta encode {results} > results.json, then import results.json "
        "(or pipe: vegeta attack ... | vegeta encode | hub import vegeta - ...)"]
    assert "UTF-8" not in refused.stderr

    encoded = tmp_path / "results.json"
    with encoded.open("wb") as out:
        subprocess.run([vegeta, "encode", str(results)], stdout=out, check=True, timeout=60)
    sent = sum(1 for line in encoded.read_bytes().splitlines() if line.strip())
    imported = hub("import", "vegeta", str(encoded), "--experiment", experiment)
    assert imported.returncode == 0, imported.stderr
    assert f"sent {sent:,} vegeta results" in imported.stdout and sent == 20
