"""The embedded Kafka broker: a single-node KRaft broker the hub installs, starts and stops itself.

The broker's jars come from Maven Central through Maven (``deploy/kafka/pom.xml``) into a
cache outside the repository (``HUB_KAFKA_CACHE/<version>/libs``). The broker's state lives
under the hub's home::

    <home>/kafka/server.properties   rendered on every start from the settings
    <home>/kafka/cluster.id          the KRaft cluster id, chosen once
    <home>/kafka/data/               the log dir, formatted once with the storage tool
    <home>/logs/kafka.log            the broker's own log (Log4j 2, deploy/kafka/log4j2.yaml)
    <home>/logs/kafka.out            the JVM's stdout/stderr (crashes, JVM warnings)
    <home>/run/kafka.pid             pid of the running broker

The broker runs in its own session, so it outlives the CLI command that started it. With
``HUB_KAFKA_BOOTSTRAP`` set the hub uses that cluster and this module starts nothing.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.errors import HubError, UserError
from hub.runtime.process import pid_alive
from hub.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
POM_FILE = DEPLOY_DIR / "pom.xml"
LOG4J2_CONFIG = DEPLOY_DIR / "log4j2.yaml"

MIN_JAVA = 17
MARKER_NAME = ".installed"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


# ---- configuration -------------------------------------------------------------------------

def render_server_properties(port: int, data_dir: Path, node_id: int = 1,
                             host: str = "127.0.0.1") -> str:
    """server.properties of a single-node KRaft broker+controller on loopback.

    The client listener is ``host:port``; the controller listener is ``host:port+1``.
    """
    controller_port = port + 1
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": f"{node_id}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    header = ("# Written by gameday-hub on every `hub kafka start`; edits are overwritten.\n"
              "# Single-node KRaft broker and controller on loopback.\n")
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def new_cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage random-uuid`` prints it (saves a JVM start).

    Kafka's Uuid: 16 random bytes, url-safe base64 without padding, never starting with "-".
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


# ---- Java and Maven ------------------------------------------------------------------------

def find_java() -> str:
    """Path of a ``java`` of version 17 or newer, from JAVA_HOME if set, else from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise UserError(f"JAVA_HOME={java_home} has no bin/java; point JAVA_HOME at a "
                            f"Java {MIN_JAVA}+ installation or unset it")
        candidate = str(java)
    else:
        found = shutil.which("java")
        if not found:
            raise UserError(f"java was not found on PATH; the embedded Kafka broker needs Java "
                            f"{MIN_JAVA}+ (or set HUB_KAFKA_BOOTSTRAP to use an existing cluster)")
        candidate = found
    version = java_major_version(candidate)
    if version < MIN_JAVA:
        raise UserError(f"{candidate} is Java {version}; the embedded Kafka broker needs Java "
                        f"{MIN_JAVA}+ (set JAVA_HOME to a newer one)")
    return candidate


def java_major_version(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"could not run {java} -version: {exc}") from None
    text = out.stderr + out.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise UserError(f"could not tell the Java version from `{java} -version`: {text.strip()[:200]}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    return major


def find_mvn() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise UserError("mvn (Apache Maven) was not found on PATH; it fetches the embedded Kafka "
                        "broker's jars from Maven Central (or set HUB_KAFKA_BOOTSTRAP to use an "
                        "existing cluster)")
    return mvn


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MVN_BOILERPLATE = ("To see the full stack trace", "Re-run Maven using", "For more information about",
                    "[Help 1] http", "After correcting the problems")


def _mvn_error_lines(output: str, count: int = 10) -> list[str]:
    """The last meaningful lines of Maven's output, without colour codes and help boilerplate."""
    lines = [_ANSI.sub("", line).rstrip() for line in output.splitlines()]
    lines = [line for line in lines
             if line.strip() and line.strip() != "[ERROR]"
             and not any(marker in line for marker in _MVN_BOILERPLATE)]
    return lines[-count:]


# ---- process helpers -----------------------------------------------------------------------

_pid_alive = pid_alive


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"bad bootstrap server {item!r}: expected host:port")
        servers.append((host.strip("[]"), int(port)))
    if not servers:
        raise UserError("empty bootstrap servers")
    return servers


# ---- readiness -----------------------------------------------------------------------------

def probe_kafka(bootstrap: str, timeout: float = 5.0) -> dict[str, Any]:
    """One metadata round trip: returns ``{"brokers": [...], "controller_id": ...}`` or raises."""
    from hub.runtime.topics import admin_client

    with admin_client(bootstrap, timeout) as admin:
        cluster = admin.describe_cluster()
    if not cluster.get("brokers"):
        raise RuntimeError("metadata lists no brokers yet")
    return cluster


def wait_for_kafka(bootstrap: str, timeout: float = 60.0, *,
                   alive: Callable[[], bool] | None = None, interval: float = 0.5) -> dict[str, Any]:
    """Wait until the cluster at ``bootstrap`` answers a metadata request; return its metadata.

    Works against any cluster. ``alive``, if given, is called between attempts; when it
    returns False waiting stops early with a HubError (used for a broker process that died).
    Raises HubError when ``timeout`` seconds pass without an answer.
    """
    servers = _split_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if alive is not None and not alive():
            raise HubError(f"Kafka at {bootstrap} went away while waiting for it")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # Cheap TCP check first: the admin client is slow to give up on a closed port.
        if any(_tcp_open(host, port, min(1.0, remaining)) for host, port in servers):
            try:
                return probe_kafka(bootstrap, timeout=min(5.0, max(1.0, remaining)))
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last_error = exc
        else:
            last_error = ConnectionRefusedError(f"nothing listens on {bootstrap}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    raise HubError(f"Kafka at {bootstrap} did not answer a metadata request within {timeout:g}s"
                   + (f" (last error: {last_error})" if last_error else ""))


def _tcp_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=max(0.1, timeout)):
            return True
    except OSError:
        return False


# ---- the runtime ---------------------------------------------------------------------------

class KafkaRuntime:
    """Install, start, stop and inspect the hub's embedded single-node Kafka broker."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._proc: subprocess.Popen | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.settings.kafka_version

    @property
    def install_dir(self) -> Path:
        return Path(self.settings.kafka_cache).expanduser().resolve() / self.version

    @property
    def libs_dir(self) -> Path:
        return self.install_dir / "libs"

    @property
    def marker_file(self) -> Path:
        return self.install_dir / MARKER_NAME

    @property
    def kafka_dir(self) -> Path:
        return self.settings.home_dir / "kafka"

    @property
    def data_dir(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def config_file(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def cluster_id_file(self) -> Path:
        return self.kafka_dir / "cluster.id"

    @property
    def log_file(self) -> Path:
        return self.settings.logs_dir / "kafka.log"

    @property
    def out_file(self) -> Path:
        return self.settings.logs_dir / "kafka.out"

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / "kafka.pid"

    @property
    def port(self) -> int:
        return int(self.settings.kafka_port)

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap

    # -- install -------------------------------------------------------------------------
    def is_installed(self) -> bool:
        return self.marker_file.is_file() and any(self.libs_dir.glob("kafka_2.13-*.jar"))

    def install(self, progress: Callable[[str], Any] = print) -> Path:
        """Fetch the broker's jars with Maven into the cache; return the libs directory.

        Idempotent: a marker file is written only after a complete download, so an
        interrupted one is redone from scratch.
        """
        if self.is_installed():
            progress(f"Kafka {self.version} is already installed in {self.libs_dir}")
            return self.libs_dir
        java = find_java()
        mvn = find_mvn()
        if not POM_FILE.is_file():
            raise HubError(f"{POM_FILE} is missing; the hub's deploy/ folder is incomplete")
        self.install_dir.mkdir(parents=True, exist_ok=True)
        with open(self.install_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing the same version
            if self.is_installed():
                progress(f"Kafka {self.version} is already installed in {self.libs_dir}")
                return self.libs_dir
            self.marker_file.unlink(missing_ok=True)
            if self.libs_dir.exists():
                progress(f"Removing an incomplete download in {self.libs_dir}")
                shutil.rmtree(self.libs_dir)
            progress(f"Fetching Kafka {self.version} broker jars from Maven Central with Maven "
                     f"(into {self.libs_dir}; this takes about half a minute)...")
            started = time.monotonic()
            env = dict(os.environ)
            if "JAVA_HOME" not in env:
                env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
            cmd = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(POM_FILE), "dependency:copy-dependencies",
                   f"-DoutputDirectory={self.libs_dir}", f"-Dkafka.version={self.version}"]
            log.debug("running %s", " ".join(cmd))
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                     cwd=self.install_dir, timeout=1800)
            except subprocess.TimeoutExpired:
                raise HubError("mvn did not finish within 30 minutes fetching the Kafka jars") from None
            if out.returncode != 0:
                last = "\n".join(_mvn_error_lines(out.stdout + out.stderr))
                hint = ""
                if "Could not find artifact org.apache.kafka" in last or "kafka_2.13:jar" in last:
                    hint = f" (is HUB_KAFKA_VERSION={self.version} a released Kafka version?)"
                raise UserError(f"mvn failed (exit {out.returncode}) fetching Kafka "
                                f"{self.version}{hint}; its last lines:\n{last}")
            jars = sorted(p.name for p in self.libs_dir.glob("*.jar"))
            if not any(name.startswith("kafka_2.13-") for name in jars):
                raise HubError(f"mvn succeeded but {self.libs_dir} has no kafka_2.13 jar")
            self.marker_file.write_text("".join(f"{name}\n" for name in jars))
            progress(f"Installed Kafka {self.version}: {len(jars)} jars in "
                     f"{time.monotonic() - started:.0f}s")
        return self.libs_dir

    # -- process state -------------------------------------------------------------------
    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        if not _pid_alive(pid):
            return False
        cmdline = _cmdline(pid)
        if cmdline is None:  # no /proc: trust the pid file
            return True
        return MAIN_CLASS in cmdline and str(self.config_file) in cmdline

    def running_pid(self) -> int | None:
        """Pid of our running broker, or None (a stale pid file is removed)."""
        pid = self.read_pid()
        if pid is None:
            return None
        if self._is_our_broker(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def is_running(self) -> bool:
        return self.running_pid() is not None

    def status(self) -> dict[str, Any]:
        pid = self.running_pid() if self.settings.embedded_kafka else None
        return {
            "embedded": self.settings.embedded_kafka,
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap,
            "version": self.version,
            "installed": self.is_installed(),
            "libs": str(self.libs_dir),
            "log": str(self.log_file),
            "out": str(self.out_file),
            "data_dir": str(self.data_dir),
            "config": str(self.config_file),
        }

    # -- start -----------------------------------------------------------------------------
    def _classpath(self) -> str:
        return str(self.libs_dir / "*")

    def _log_props(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
                f"-Dhub.kafka.log.file={self.log_file}",
                f"-Dkafka.logs.dir={self.settings.logs_dir}"]

    def _ensure_formatted(self, java: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        if self.cluster_id_file.is_file():
            cluster_id = self.cluster_id_file.read_text().strip()
        else:
            cluster_id = new_cluster_id()
            self.cluster_id_file.write_text(cluster_id + "\n")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [java, "-Xmx256m", *self._log_props(), "-cp", self._classpath(), STORAGE_TOOL,
               "format", "-t", cluster_id, "-c", str(self.config_file), "--ignore-formatted"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            text = (out.stdout + out.stderr).strip()
            raise HubError(f"formatting the Kafka data dir {self.data_dir} failed "
                           f"(exit {out.returncode}):\n{text[-2000:]}")

    def _check_ports(self) -> None:
        for port, role in ((self.port, "client"), (self.port + 1, "controller")):
            if _port_in_use("127.0.0.1", port):
                raise UserError(
                    f"port {port} (the embedded broker's {role} listener) is already in use by "
                    f"another process, not by this hub's broker; stop it, or pick other ports "
                    f"with HUB_KAFKA_PORT (the controller uses HUB_KAFKA_PORT+1), or point "
                    f"HUB_KAFKA_BOOTSTRAP at an existing cluster")

    def start(self, wait: bool = True, progress: Callable[[str], Any] = print) -> int:
        """Start the broker (installing it first if needed) and return its pid.

        If our broker already runs, returns its pid. With ``wait`` the call returns once the
        broker answers a metadata request, or raises HubError with the log's last lines.
        """
        if not self.settings.embedded_kafka:
            raise UserError(f"HUB_KAFKA_BOOTSTRAP is set ({self.settings.kafka_bootstrap}): the hub "
                            f"uses that cluster and has no broker of its own to start")
        pid = self.running_pid()
        if pid is not None:
            if wait:
                self._wait_ready(pid)
            return pid
        java = find_java()
        if not self.is_installed():
            self.install(progress=progress)
        self._check_ports()
        for directory in (self.kafka_dir, self.settings.logs_dir, self.settings.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_server_properties(self.port, self.data_dir))
        self._ensure_formatted(java)

        cmd = [java, f"-Xmx{self.settings.kafka_heap}", "-XX:+UseG1GC",
               "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true", *self._log_props(),
               "-cp", self._classpath(), MAIN_CLASS, str(self.config_file)]
        log.debug("starting %s", " ".join(cmd))
        with open(self.out_file, "ab") as out:
            out.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} starting Kafka {self.version} "
                      f"on {self.bootstrap}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.kafka_dir, start_new_session=True, close_fds=True)
        pid = self._proc.pid
        self.pid_file.write_text(f"{pid}\n")
        if wait:
            self._wait_ready(pid)
        return pid

    def _wait_ready(self, pid: int) -> None:
        try:
            wait_for_kafka(self.bootstrap, self.settings.kafka_start_timeout,
                           alive=lambda: _pid_alive(pid))
        except HubError as exc:
            died = not _pid_alive(pid)
            if not died:
                self.stop()
            self.pid_file.unlink(missing_ok=True)
            what = ("exited while starting" if died else
                    f"did not answer within {self.settings.kafka_start_timeout:g}s and was stopped")
            raise HubError(f"the embedded Kafka broker (pid {pid}) {what}.\n{self.log_tail()}") from exc

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log and of its JVM output, labelled, for error messages."""
        parts = []
        for path in (self.log_file, self.out_file):
            text = tail(path, lines)
            if text.strip():
                parts.append(f"--- last lines of {path}:\n{text}")
        return "\n".join(parts) or f"(no output in {self.log_file} or {self.out_file})"

    # -- stop ------------------------------------------------------------------------------
    def stop(self, timeout: float = 30) -> bool:
        """Stop the broker: SIGTERM, wait up to ``timeout`` s, then SIGKILL. True if one ran."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            log.warning("Kafka broker pid %s ignored SIGTERM for %ss; killing it", pid, timeout)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True
