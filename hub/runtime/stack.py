"""Starts and stops the embedded stack: the broker (unless an external one is configured) and the worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from hub.errors import HubError, UserError
from hub.runtime.process import pid_alive
from hub.masking import mask_data
from hub.runtime.kafka import KafkaRuntime, tail, wait_for_kafka
from hub.settings import Settings

Progress = Callable[[str], Any]


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.kafka = KafkaRuntime(settings)

    # ---- worker process ------------------------------------------------------------
    @property
    def worker_pid_file(self):
        return self.settings.run_dir / "worker.pid"

    @property
    def worker_log(self):
        return self.settings.logs_dir / "worker.log"

    def worker_pid(self) -> int | None:
        try:
            pid = int(self.worker_pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def api(self, path: str, payload: dict | None = None, timeout: float = 5.0) -> Any:
        """Call the running hub's HTTP endpoint and return its decoded JSON answer (an object, or a
        list for list endpoints); raises HubError with the hub's message on failure."""
        url = self.settings.http_url + path
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        request.add_header("Content-Type", "application/json")
        if self.settings.api_token:
            request.add_header("Authorization", f"Bearer {self.settings.api_token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error") or exc.reason
            except Exception:
                message = exc.reason
            raise HubError(f"{message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise HubError(f"the hub at {self.settings.http_url} did not answer: {exc}") from None

    def hub_answers(self) -> bool:
        try:
            self.api("/health", timeout=2.0)
            return True
        except HubError:
            return False

    def is_ready(self) -> bool:
        try:
            return bool(self.api("/ready", timeout=2.0).get("ready"))
        except HubError:
            return False

    # ---- lifecycle -----------------------------------------------------------------------
    def start_kafka(self, progress: Progress) -> None:
        if self.settings.embedded_kafka:
            running = self.kafka.running_pid()
            if running is None:
                progress(f"starting the embedded Kafka broker {self.kafka.version} at {self.kafka.bootstrap} ...")
            pid = self.kafka.start(wait=True, progress=progress)
            if running is None:
                progress(f"started the embedded Kafka broker (pid {pid}) at {self.kafka.bootstrap}; "
                         f"`hub down` stops it")
            else:
                progress(f"the embedded Kafka broker is already running (pid {pid}) at {self.kafka.bootstrap}")
        else:
            progress(f"using the Kafka cluster at {self.settings.kafka_bootstrap}")
            wait_for_kafka(self.settings.kafka_bootstrap, timeout=30)

    def up(self, progress: Progress = print) -> int:
        """Start everything in the background and return once the hub answers ready."""
        for path in (self.settings.run_dir, self.settings.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
        pid = self.worker_pid()
        if pid and self.is_ready():
            progress(f"the hub is already running (worker pid {pid}) at {self.settings.http_url}")
            return pid
        if pid:
            raise UserError(f"a worker (pid {pid}) is running but not ready; see {self.worker_log} or run `hub down`")
        self.start_kafka(progress)
        progress("starting the worker (store, agents, HTTP endpoint)")
        log = open(self.worker_log, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=os.environ.copy(),
        )
        log.close()
        deadline = time.monotonic() + self.settings.ready_timeout
        last_note = time.monotonic()
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise HubError(f"the worker exited with code {process.returncode}; last lines of "
                               f"{self.worker_log}:\n{tail(self.worker_log, 20)}")
            if self.is_ready():
                progress(f"the hub is ready at {self.settings.http_url} (worker pid {process.pid})")
                return process.pid
            if time.monotonic() - last_note > 10:
                progress("  still waiting for the worker to join its consumer group ...")
                last_note = time.monotonic()
            time.sleep(0.3)
        raise HubError(f"the worker did not become ready in {self.settings.ready_timeout:.0f}s; "
                       f"see {self.worker_log}")

    def stop_worker(self, timeout: float = 30.0, progress: Progress = print) -> bool:
        pid = self.worker_pid()
        if pid is None:
            return False
        progress(f"stopping the worker (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            progress("  the worker did not stop in time; killing it")
            os.kill(pid, signal.SIGKILL)
        self.worker_pid_file.unlink(missing_ok=True)
        return True

    def down(self, progress: Progress = print) -> None:
        stopped = self.stop_worker(progress=progress)
        if self.settings.embedded_kafka and self.kafka.is_running():
            progress("stopping the Kafka broker")
            self.kafka.stop()
            stopped = True
        progress("the hub is stopped" if stopped else "nothing was running")

    def status(self) -> dict:
        info: dict[str, Any] = {"home": str(self.settings.home_dir)}
        if self.settings.embedded_kafka:
            info["kafka"] = self.kafka.status()
        else:
            info["kafka"] = {"external": True, "bootstrap": self.settings.kafka_bootstrap}
        pid = self.worker_pid()
        worker: dict[str, Any] = {"running": pid is not None, "pid": pid, "log": str(self.worker_log)}
        if pid is not None:
            try:
                worker.update(self.api("/v1/status"))
                worker["ready"] = self.is_ready()
            except HubError as exc:
                worker["error"] = str(exc)
        info["worker"] = worker
        info["store"] = self.settings.clickhouse_url and "server" or str(self.settings.clickhouse_path)
        if self.settings.embedded_clickhouse and self.settings.store_endpoint:
            from hub.storage.server import endpoint_readers

            users = ", ".join(r.user for r in endpoint_readers(self.settings))
            info["store_endpoint"] = (f"http://{self.settings.store_host}:{self.settings.store_port} "
                                      f"(ClickHouse HTTP interface, read-only user {users})")
        info["http"] = self.settings.http_url
        return mask_data(info)  # the store's password, webhook URLs and tokens are never shown
