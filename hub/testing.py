"""Helpers for tests, the hub's own and its users': run a real worker process against a broker.

Example::

    from hub.testing import WorkerProcess, free_port

    with WorkerProcess.start(tmp_path, bootstrap="127.0.0.1:9092") as worker:
        send_records(worker.settings.bootstrap, worker.settings.topic_requests, records)
        worker.wait_for_count("SELECT count() FROM requests", 1000)

Several workers sharing one store (cluster mode on one host) go through ``StoreServerProcess``
and ``WorkerProcess.start_peer``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from hub.runtime.kafka import tail
from hub.runtime.stack import Stack
from hub.settings import Settings, load_settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(home: Path, bootstrap: str, **overrides: str) -> dict[str, str]:
    """Environment for a worker with its own home, topics, consumer group and port."""
    suffix = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "HUB_HOME": str(home),
        "HUB_KAFKA_BOOTSTRAP": bootstrap,
        "HUB_TOPIC_REQUESTS": f"requests-{suffix}",
        "HUB_TOPIC_DLQ": f"dlq-{suffix}",
        "HUB_TOPIC_EXPERIMENTS": f"experiments-{suffix}",
        "HUB_TOPIC_SPANS": f"spans-{suffix}",
        "HUB_TOPIC_METRICS": f"metrics-{suffix}",
        "HUB_TOPIC_LOGS": f"logs-{suffix}",
        "HUB_TOPIC_ROLLUPS": f"rollups-{suffix}",
        "HUB_TOPIC_ALERTS": f"alerts-{suffix}",
        "HUB_TOPIC_PAIRS": f"pairs-{suffix}",
        "HUB_APP_ID": f"hub-test-{suffix}",
        "HUB_HTTP_PORT": str(free_port()),
        "HUB_STORE_PORT": str(free_port()),  # the embedded store's ClickHouse endpoint
        "HUB_SESSION_TIMEOUT": "6",
    })
    env.update(overrides)
    return env


class _Child:
    """A child process the tests start: stopped with SIGTERM (then SIGKILL), or killed as in a crash."""

    process: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class WorkerProcess(_Child):
    """A ``python -m streams.worker`` child process with its own settings."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.settings: Settings = load_settings(env)
        self.stack = Stack(self.settings)
        self.process: subprocess.Popen | None = None
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.settings.logs_dir / "worker.log"

    @classmethod
    def start(cls, home: Path, bootstrap: str, timeout: float = 120.0, **overrides: str) -> "WorkerProcess":
        worker = cls(isolated_env(home, bootstrap, **overrides))
        worker.launch(timeout)
        return worker

    def launch(self, timeout: float = 120.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "streams.worker"], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{tail(self.log_path, 40)}")
            if self.stack.is_ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{tail(self.log_path, 40)}")

    def sql(self, query: str) -> list[list]:
        return self.stack.api("/v1/sql", {"query": query}, timeout=60)["rows"]

    def wait_for(self, query: str, expected, timeout: float = 120.0, interval: float = 0.25):
        """Poll a single-value query until it equals ``expected``; returns the last value seen."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.sql(query)[0][0]
            if value == expected:
                return value
            time.sleep(interval)
        return value

    def partitions(self, topic: str | None = None) -> list[int]:
        """The partitions of ``topic`` (default: the request topic) this worker holds now."""
        topic = topic or self.settings.topic_requests
        held = []
        for name in self.stack.api("/v1/status", timeout=10).get("assignment", []):
            base, _, rest = name.rpartition("[")
            if base == topic:
                held.append(int(rest.rstrip("]")))
        return sorted(held)

    def peer(self, home: Path, **overrides: str) -> "WorkerProcess":
        """Another worker of the same cluster (not started yet): same topics, consumer group,
        store and partition count, its own home and HTTP port."""
        shared = {k: v for k, v in self.env.items() if k.startswith("HUB_TOPIC_") or k in PEER_SETTINGS}
        shared.update(overrides)
        return WorkerProcess(isolated_env(home, self.settings.bootstrap, **shared))

    def start_peer(self, home: Path, timeout: float = 120.0, **overrides: str) -> "WorkerProcess":
        """Start another worker of the same cluster (see ``peer``)."""
        worker = self.peer(home, **overrides)
        worker.launch(timeout)
        return worker

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# What the workers of one cluster must agree on (besides their topics).
PEER_SETTINGS = ("HUB_APP_ID", "HUB_CLICKHOUSE_URL", "HUB_DATABASE", "HUB_PARTITIONS", "HUB_SESSION_TIMEOUT",
                 "HUB_TTL_DAYS", "HUB_REDACTION_POLICY", "HUB_OTLP_ENCODING")


class StoreServerProcess(_Child):
    """A ``hub store serve`` child process: one embedded store that several workers share.

    Example::

        with StoreServerProcess.start(tmp_path / "store") as store:
            first = WorkerProcess.start(tmp_path / "w1", bootstrap, HUB_CLICKHOUSE_URL=store.url)
            second = first.start_peer(tmp_path / "w2")
    """

    def __init__(self, home: Path, port: int | None = None, **overrides: str):
        self.home = Path(home)
        self.port = port or free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.env.update({"HUB_HOME": str(self.home), "HUB_STORE_HOST": "127.0.0.1",
                         "HUB_STORE_PORT": str(self.port)})
        self.env.update(overrides)
        self.settings: Settings = load_settings(self.env)
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.settings.logs_dir / "store-server.log"
        # Its token: HUB_STORE_TOKEN, or the one it keeps in its home (made now, as its first start
        # would, so that the workers' URL carries it before the server runs).
        from hub.storage.token import ensure_token

        self.token = ensure_token(self.settings)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The value of HUB_CLICKHOUSE_URL for the workers."""
        return f"http://default:{self.token}@127.0.0.1:{self.port}"

    @classmethod
    def start(cls, home: Path, timeout: float = 60.0, port: int | None = None, **overrides: str) -> "StoreServerProcess":
        server = cls(home, port, **overrides)
        server.launch(timeout)
        return server

    def launch(self, timeout: float = 60.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "hub.cli.main", "store", "serve"], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def ping(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as response:
                return response.read() == b"Ok.\n"
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"store server exited with {self.process.returncode}:\n{tail(self.log_path, 40)}")
            if self.ping():
                return
            time.sleep(0.1)
        raise TimeoutError(f"store server not answering in {timeout}s:\n{tail(self.log_path, 40)}")

    def client(self, **kwargs):
        """A clickhouse-connect HTTP client of this server."""
        import clickhouse_connect

        return clickhouse_connect.get_client(dsn=self.url, **kwargs)

    def __enter__(self) -> "StoreServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
