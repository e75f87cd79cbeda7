"""``hub demo``: a whole gameday on the embedded stack, scripted, in a few minutes.

What runs (everything on loopback, in its own home and on its own ports):

1. the stack ``hub up`` starts: the embedded Kafka broker (unless ``HUB_KAFKA_BOOTSTRAP`` names
   one) and the worker with the embedded ClickHouse store;
2. the backends of ``examples/gameday/backends.py`` (primary, secondary, shadow, canary and the
   fault switch, whose ``POST /halt`` is the experiment's halt target);
3. ``hub gateway`` with ``examples/gameday/gateway.yaml`` (ports and experiment id filled in);
4. an in-process load generator (``hub.demo.load``) sending GETs through the gateway;
5. the experiment of ``examples/gameday/experiment.yaml``: created, prerequisites checked,
   started (baseline), moved to injection, then the scripted fault: the primary fails on
   ``/appointments/{id}``. The abort rule fires, the judge aborts the experiment and calls the
   halt target, which removes the fault;
6. the report (``hub report``) and the dashboards (``hub dashboards export``) into the run's
   folder, and a comparison of what was injected with what the hub reported
   (``ground-truth.json``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import msgspec
import yaml

from hub.errors import HubError, UserError
from hub.settings import Settings, load_settings

FAULT_ROUTE = "/appointments/{id}"
SHADOW_DIFF_ROUTE = "/patients/{id}/allergies"
SHADOW_DIFF_FIELD = "allergies[].severity"
FAULT_ID = "appointments-store-down"
LEAD, INJECTOR = "hub-demo (lead)", "hub-demo (injector)"
BACKEND_OFFSETS = {"patient-api": 1, "patient-api-b": 2, "patient-api-v2": 3, "patient-api-canary": 4}
CONTROL_OFFSET = 5

# defaults: next to, never on, the ports of `hub up` (broker 19092/19093, HTTP 8765, store 18123)
DEFAULT_KAFKA_PORT = 19192
DEFAULT_HTTP_PORT = 8766
DEFAULT_STORE_PORT = 18223
DEFAULT_PORT_BASE = 8180


def examples_dir() -> Path:
    """``examples/gameday`` of the checkout the hub runs from."""
    folder = Path(__file__).resolve().parents[2] / "examples" / "gameday"
    if not (folder / "experiment.yaml").is_file():
        raise UserError(f"the demo needs the example gameday folder {folder} (run the hub from its checkout)")
    return folder


@dataclass
class DemoOptions:
    home: Path
    out: Path | None = None
    duration: float = 90.0
    rate: float = 40.0
    fault_rate: float = 0.6
    kafka_port: int = DEFAULT_KAFKA_PORT
    http_port: int = DEFAULT_HTTP_PORT
    port_base: int = DEFAULT_PORT_BASE
    store_port: int = DEFAULT_STORE_PORT
    stop: bool = False

    @property
    def baseline_s(self) -> float:
        return max(8.0, 0.35 * self.duration)

    @property
    def abort_wait_s(self) -> float:
        """How long the fault may stay on waiting for the abort rule before the demo gives up."""
        return max(40.0, 0.65 * self.duration)

    @property
    def tail_s(self) -> float:
        """Traffic kept up after the abort (the recovery the dashboards show)."""
        return min(10.0, max(4.0, 0.1 * self.duration))


def _port_free(port: int) -> bool:
    """Nothing listens on it (connections of an earlier run in TIME_WAIT do not count: the servers
    bind with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _at(epoch: float) -> dt.datetime:
    """An event time for the timeline from an epoch second (the moment something happened)."""
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _http(url: str, payload: Any = None, method: str | None = None, timeout: float = 5.0) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def _write_env_file(home: Path, values: dict[str, str]) -> Path:
    """Set ``values`` in ``<home>/hub.env`` (other lines kept), so ``HUB_HOME=<home> hub ...`` finds
    the demo's ports."""
    path = home / "hub.env"
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    path.write_text("\n".join(kept + [f"{k}={v}" for k, v in values.items()]) + "\n")
    return path


def definition_with(defn, experiment_id: str, halt_url: str):
    """The example's definition under a new id, its halt target on the demo's fault switch."""
    from hub.experiments.definition import ExperimentDefinition

    raw = msgspec.to_builtins(defn)
    raw.update(id=experiment_id, halt=[{"name": "fault-switch", "url": halt_url}])
    return msgspec.convert(raw, ExperimentDefinition)


class Demo:
    def __init__(self, options: DemoOptions, say: Callable[[str], Any] = print):
        self.o = options
        self.say = say
        self.folder = examples_dir()
        self.children: dict[str, subprocess.Popen] = {}
        self.started_stack = False
        self.experiment_id = "patient-api-gameday-" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
        self.out = Path(options.out or options.home / "runs" / self.experiment_id)
        self.gateway_url = f"http://127.0.0.1:{options.port_base}"
        self.control_url = f"http://127.0.0.1:{options.port_base + CONTROL_OFFSET}"
        self.halt_url = self.control_url + "/halt"
        self.truth: dict[str, Any] = {"experiment_id": self.experiment_id}
        self.t0 = time.monotonic()

    # ---- set-up ------------------------------------------------------------------------------
    def _environment(self) -> Settings:
        home = self.o.home
        home.mkdir(parents=True, exist_ok=True)
        values = {"HUB_KAFKA_PORT": str(self.o.kafka_port), "HUB_HTTP_PORT": str(self.o.http_port),
                  "HUB_STORE_PORT": str(self.o.store_port)}
        _write_env_file(home, values)
        env = {k: v for k, v in os.environ.items() if k != "HUB_CONFIG_FILE"}
        env.update(values, HUB_HOME=str(home))
        # the worker `hub up` starts, `hub gateway`, `hub report` and the rest inherit this
        os.environ.clear()
        os.environ.update(env)
        self.env = env
        return load_settings(env)

    def _check_ports(self, stack) -> None:
        """Before anything starts: every port the demo will listen on is free (the broker's and the
        hub's only when this home's hub is not running yet); each taken one is named with the option
        that moves it."""
        wanted = [("gateway", self.o.port_base, "--port-base"),
                  *((f"backend {name}", self.o.port_base + off, "--port-base") for name, off in BACKEND_OFFSETS.items()),
                  ("fault switch", self.o.port_base + CONTROL_OFFSET, "--port-base")]
        if not stack.kafka.is_running():
            wanted += [("broker", self.o.kafka_port, "--kafka-port"),
                       ("broker controller", self.o.kafka_port + 1, "--kafka-port")]
        if stack.worker_pid() is None:
            wanted.append(("hub HTTP endpoint", self.o.http_port, "--http-port"))
            wanted.append(("store ClickHouse endpoint", self.o.store_port, "--store-port"))
        busy = [(what, port, option) for what, port, option in wanted if not _port_free(port)]
        if busy:
            taken = "; ".join(f"{what} port {port} (change it with {option})" for what, port, option in busy)
            raise UserError(f"port(s) already in use, nothing was started: {taken}")

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True)
        self.children[name] = child
        return child

    def _wait_port(self, name: str, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        child = self.children[name]
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise HubError(f"{name} exited with code {child.returncode}; see {self.out / 'logs' / (name + '.log')}")
            if _port_open(port):
                return
            time.sleep(0.2)
        raise HubError(f"{name} did not listen on port {port} in {timeout:.0f}s")

    def _gateway_config(self, settings: Settings) -> Path:
        config = yaml.safe_load((self.folder / "gateway.yaml").read_text())
        config["gateway"]["listen"] = f"127.0.0.1:{self.o.port_base}"
        config["gateway"]["experiment_id"] = self.experiment_id
        for name, backend in config["backends"].items():
            backend["url"] = f"http://127.0.0.1:{self.o.port_base + BACKEND_OFFSETS[name]}"
        config.setdefault("emit", {})["pairs_topic"] = settings.topic_pairs
        path = self.out / "gateway.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _stop_child(self, name: str, timeout: float = 20.0) -> None:
        child = self.children.pop(name, None)
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)

    def _hub(self, *args: str, timeout: float = 300.0) -> str:
        """Run a ``hub`` command with the demo's environment; its output, or HubError with its error."""
        done = subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise HubError(f"hub {args[0]} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        return done.stdout

    def log(self, line: str) -> None:
        self.say(f"[demo {time.monotonic() - self.t0:6.1f}s] {line}")

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        from hub.experiments.definition import load_definition
        from hub.experiments.service import ExperimentService
        from hub.runtime.stack import Stack

        definition = definition_with(load_definition(self.folder / "experiment.yaml"), self.experiment_id,
                                     self.halt_url)
        settings = self._environment()
        self.settings = settings
        stack = Stack(settings)
        self._check_ports(stack)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "experiment.yaml").write_text(yaml.safe_dump(msgspec.to_builtins(definition), sort_keys=False))
        interrupted = False
        failed = True
        try:
            self.started_stack = stack.worker_pid() is None
            self.log(f"starting the embedded stack in {settings.home_dir} (Kafka {settings.bootstrap}, "
                     f"HTTP {settings.http_url})")
            stack.up(progress=lambda line: self.log("  " + line))
            self.stack = stack
            self.log(f"starting the backends ({self.folder / 'backends.py'}) on ports "
                     f"{self.o.port_base + 1}-{self.o.port_base + CONTROL_OFFSET}")
            self._spawn("backends", [sys.executable, str(self.folder / "backends.py"),
                                     "--base-port", str(self.o.port_base + 1)])
            self._wait_port("backends", self.o.port_base + CONTROL_OFFSET)
            config = self._gateway_config(settings)
            self.log(f"starting `hub gateway --config {config}` on {self.gateway_url}")
            self._spawn("gateway", [sys.executable, "-m", "hub.cli.main", "gateway", "--config", str(config)])
            self._wait_port("gateway", self.o.port_base)
            self.service = ExperimentService(settings)
            self._close_leftovers()
            self.service.create(definition, actor=LEAD)
            self.log(f"experiment {self.experiment_id} created; its halt target: {self.halt_url}")
            self._command(lambda s, lc: lc.check_prerequisites(
                s, [{"item": p.item, "done": True} for p in s.definition.prerequisites], LEAD, self._now()))
            self.log("prerequisites checked: all done, the experiment is ready")
            outcome = asyncio.run(self._scenario())
            self._stop_child("gateway")
            self.log("gateway stopped (its emitters flushed)")
            self.truth["backends"] = self._control_state()
            self._stop_child("backends")
            self._wait_stored(outcome["answered"])
            self._write_outputs()
            self._print_where_to_look()
            failed = False
            return 0 if self.truth.get("aborted_by_rule") and self.truth["fault"].get("removed_by") == "halt target" else 1
        except KeyboardInterrupt:
            interrupted = True
            self.say("hub demo: interrupted; stopping everything it started")
            self._close_the_experiment()
            return 130
        finally:
            for name in list(self.children):
                self._stop_child(name)
            if getattr(self, "service", None) is not None:
                self.service.close()
            if (self.o.stop or interrupted) and self.started_stack:
                stack.down(progress=lambda line: self.log(line))
            elif failed and not interrupted and stack.worker_pid() is not None:
                # the error itself follows (raised on); the hub stays up for its logs and SQL
                self.say(f"hub demo failed; its backends and gateway are stopped, its hub is still running "
                         f"(home {settings.home_dir}, Kafka {settings.bootstrap}, HTTP {settings.http_url}; "
                         f"logs in {settings.logs_dir} and {self.out / 'logs'}). "
                         f"Stop it with: HUB_HOME={settings.home_dir} hub down")

    def _close_the_experiment(self) -> None:
        """After Ctrl-C: abort the experiment if it is still open and record its fault removed (the
        backends, and the fault with them, stop next), so its timeline does not stay running."""
        if getattr(self, "service", None) is None:
            return
        try:
            state = self.service.get(self.experiment_id)
            if state.status in ("ready", "running"):
                self._command(lambda s, lc: lc.abort(s, "hub demo interrupted (Ctrl-C)", LEAD, self._now()))
                self.log("experiment aborted: the demo was interrupted")
            if FAULT_ID in state.faults:
                self._command(lambda s, lc: lc.remove_fault(s, FAULT_ID, INJECTOR, self._now()))
        except Exception as exc:  # the log may be gone with the broker; the rest still stops
            self.log(f"could not close the experiment on the timeline: {exc}")

    @staticmethod
    def _now() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def _command(self, decide) -> list:
        from hub.experiments import lifecycle

        return self.service.command(self.experiment_id, lambda state: decide(state, lifecycle))

    def _status(self) -> tuple[str, str]:
        state = self.service.get(self.experiment_id)
        return state.status, state.phase

    def _our_halts(self, control_state: dict) -> list[dict]:
        """The halt calls made for this run's experiment (another experiment may name the same URL)."""
        return [c for c in control_state.get("halt_calls") or [] if c.get("experiment_id") == self.experiment_id]

    def _close_leftovers(self) -> None:
        """Abort the demo experiments an earlier run left open in this home (killed before it could
        close them): their rules would still act, and their halt target is this run's fault switch."""
        from hub.experiments import lifecycle

        for eid, state in self.service.states().items():
            if eid.startswith("patient-api-gameday-") and state.status in ("ready", "running"):
                self.service.command(eid, lambda s: lifecycle.abort(s, "left open by an earlier hub demo run", LEAD,
                                                                    self._now()))
                self.log(f"aborted {eid}, left open by an earlier run")

    def _ended(self) -> str:
        """Note how the experiment ended (by whom, why) in the ground truth; one line on it."""
        state = self.service.get(self.experiment_id)
        by = state.aborted_by or ""
        self.truth.update(status=state.status, aborted_by=by, abort_reason=state.abort_reason or "",
                          aborted_by_rule=state.status == "aborted" and by.startswith("rule:"))
        return f"{state.status}" + (f" by {by}: {state.abort_reason}" if state.status == "aborted" else "")

    def _control_state(self) -> dict:
        try:
            return _http(self.control_url + "/state")
        except OSError:
            return {}

    async def _scenario(self) -> dict:
        from hub.demo.load import LoadGenerator

        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None  # a coroutine runs inside a task
        for sig in (signal.SIGTERM,):
            loop.add_signal_handler(sig, main.cancel)
        load = LoadGenerator(self.gateway_url, self.o.rate)
        load_task = asyncio.create_task(load.run())
        progress = asyncio.create_task(self._progress(load))
        run = asyncio.to_thread
        truth = self.truth
        try:
            await asyncio.sleep(2.0)  # traffic flows before the gameday begins, as it would
            await run(self._command, lambda s, lc: lc.start(s, LEAD, self._now()))
            truth["started_at"] = time.time()
            self.log(f"experiment started: phase baseline for {self.o.baseline_s:.0f}s at {self.o.rate:g} requests/s")
            await asyncio.sleep(self.o.baseline_s)
            await run(self._command, lambda s, lc: lc.change_phase(s, "injection", LEAD, self._now()))
            self.log("phase injection")
            await asyncio.sleep(2.0)
            spec = {"route": FAULT_ROUTE, "rate": self.o.fault_rate, "status": 503}
            # the fault is on when the switch answers: that moment is the event's time (read before
            # the command, which first reads the timeline back)
            await run(_http, self.control_url + "/fault", spec)
            injected = time.time()
            await run(self._command, lambda s, lc: lc.inject_fault(
                s, "http-error", f"patient-api {FAULT_ROUTE}", INJECTOR, _at(injected), fault_id=FAULT_ID,
                injector="examples/gameday/backends.py", parameters={"route": FAULT_ROUTE, "rate": self.o.fault_rate,
                                                                       "status": 503}))
            truth["fault"] = {"fault_id": FAULT_ID, "route": FAULT_ROUTE, "rate": self.o.fault_rate, "status": 503,
                              "injected_at": injected}
            self.log(f"FAULT: the primary now fails {self.o.fault_rate:.0%} of GET {FAULT_ROUTE} (503); "
                     "waiting for the abort rule")
            halted = await self._wait_for_halt(self.o.abort_wait_s)
            if halted:
                truth["fault"].update(removed_at=halted["time"], removed_by="halt target")
                self.log(f"HALT: the judge called the halt target (rule {halted.get('rule') or '?'}); "
                         "the fault is off")
                # the judge writes the abort alongside the halt: the injector records the removal after
                # it, instead of racing it for the timeline's next event, stamped with the moment the
                # switch took the halt call (the lifecycle moves it up to the abort's time at the
                # earliest, since a timeline's events are in time order)
                await self._wait_status({"aborted", "completed"}, 15.0)
                await run(self._command, lambda s, lc: lc.remove_fault(s, FAULT_ID, INJECTOR, _at(halted["time"])))
                self.log(f"experiment {await run(self._ended)}")
            else:
                await run(_http, self.control_url + "/fault", None, "DELETE")
                removed = time.time()
                status, _ = await run(self._status)
                why = "the experiment was aborted but its halt target was not called" if status == "aborted" else \
                    f"no abort within {self.o.abort_wait_s:.0f}s"
                truth["fault"].update(removed_at=removed, removed_by=f"demo ({why})")
                self.log(f"{why}: the demo removes the fault")
                await run(self._command, lambda s, lc: lc.remove_fault(s, FAULT_ID, INJECTOR, _at(removed)))
                if status == "running":
                    await run(self._command, lambda s, lc: lc.change_phase(s, "observation", LEAD, self._now()))
                    await asyncio.sleep(self.o.tail_s)
                    await run(self._command, lambda s, lc: lc.complete(s, LEAD, self._now(), "the abort rule did not fire"))
                await run(self._ended)
            await asyncio.sleep(self.o.tail_s)
        finally:
            load.stop()
            await load_task
            progress.cancel()
            loop.remove_signal_handler(signal.SIGTERM)
        truth["ended_at"] = time.time()
        state = await run(self._control_state)
        truth["halt_calls"] = self._our_halts(state)
        truth["other_halt_calls"] = [c for c in state.get("halt_calls", []) if c not in truth["halt_calls"]]
        truth["client"] = {"sent": load.stats.sent, "answered": load.stats.done, "per_route": load.stats.summary()}
        self.log(f"load stopped: {load.stats.sent} requests sent, {load.stats.done} answered")
        return {"answered": load.stats.done}

    async def _wait_for_halt(self, limit: float, after_abort: float = 10.0) -> dict | None:
        """The first call of the halt target; None when there was none within ``limit``, or within
        ``after_abort`` seconds of seeing the experiment aborted."""
        deadline = time.monotonic() + limit
        checked = 0.0
        while time.monotonic() < deadline:
            calls = self._our_halts(await asyncio.to_thread(self._control_state))
            if calls:
                return calls[0]
            if time.monotonic() - checked > 2.0:
                checked = time.monotonic()
                status, _ = await asyncio.to_thread(self._status)
                if status != "running":
                    deadline = min(deadline, time.monotonic() + after_abort)
            await asyncio.sleep(0.5)
        return None

    async def _wait_status(self, wanted: set[str], limit: float) -> str:
        deadline = time.monotonic() + limit
        status = ""
        while time.monotonic() < deadline:
            status, _ = await asyncio.to_thread(self._status)
            if status in wanted:
                return status
            await asyncio.sleep(0.5)
        return status

    async def _progress(self, load) -> None:
        while True:
            await asyncio.sleep(5.0)
            failed, answered = load.stats.errors(time.time() - 5.0)
            try:
                status, phase = await asyncio.to_thread(self._status)
            except Exception:  # the progress line is only a view
                status, phase = "?", "?"
            fault = self._control_state().get("fault")
            self.log(f"  {load.stats.sent} requests sent; last 5 s: {answered} answered, {failed} failed "
                     f"({failed / answered if answered else 0:.1%}); experiment {status}"
                     f"{' / ' + phase if phase else ''}; fault {'ON' if fault else 'off'}")

    # ---- afterwards ---------------------------------------------------------------------------
    def sql(self, query: str) -> list[list]:
        return self.stack.api("/v1/sql", {"query": query}, timeout=60)["rows"]

    def _wait_stored(self, answered: int, limit: float = 90.0) -> None:
        want = f"SELECT count() FROM {self.settings.database}.requests WHERE experiment_id = '{self.experiment_id}' " \
               "AND leg IN ('primary', 'canary')"
        deadline = time.monotonic() + limit
        got = 0
        while time.monotonic() < deadline:
            got = int(self.sql(want)[0][0])
            if got >= answered:
                break
            time.sleep(1.0)
        self.log(f"the hub stored {got} gateway legs of the {answered} answered requests")
        time.sleep(2.0)  # the last shadow pairs and alert actions

    def hub_view(self) -> dict:
        """What the hub reports about the run, read back with SQL and from the report."""
        db, x = self.settings.database, self.experiment_id
        view: dict[str, Any] = {}
        # the alerts the judge acted on: inside the run; those recorded outside it (before the start,
        # after the end plus abort_grace) set nothing off and are listed apart
        for key, inside in (("alerts", "NOT outside_run"), ("alerts_outside_run", "outside_run")):
            rows = self.sql(f"SELECT rule, severity, toUnixTimestamp64Milli(min(time)) / 1000 FROM {db}.alerts "
                            f"WHERE experiment_id = '{x}' AND kind = 'alert' AND status = 'firing' AND {inside} "
                            "GROUP BY rule, severity ORDER BY 3")
            view[key] = [{"rule": r, "severity": s, "first_firing": float(t)} for r, s, t in rows]
        view["halt_actions"] = int(self.sql(
            f"SELECT count() FROM {db}.alerts WHERE experiment_id = '{x}' AND kind = 'action' "
            "AND action IN ('webhook', 'halt')")[0][0])
        rows = self.sql(f"SELECT route, count(), countIf(outcome IN ('status_mismatch', 'body_mismatch')) "
                        f"FROM {db}.shadow_pairs WHERE experiment_id = '{x}' GROUP BY route ORDER BY route")
        view["shadow"] = {r: {"pairs": int(n), "differing": int(d)} for r, n, d in rows}
        rows = self.sql(f"SELECT route, count(), countIf(status >= 500 OR status = 0) FROM {db}.requests "
                        f"WHERE experiment_id = '{x}' AND leg = 'primary' GROUP BY route ORDER BY route")
        view["primary_legs"] = {r: {"legs": int(n), "failed": int(f)} for r, n, f in rows}
        report = self.out / "report" / "report.md"
        if report.exists():
            view["report_first_route"] = report_first_route(report.read_text())
            view["report_shadow"] = report_shadow_routes(report.read_text())
        return view

    def _write_outputs(self) -> None:
        report_dir, dashboards_dir = self.out / "report", self.out / "dashboards"
        self.log(f"writing the report: hub report {self.experiment_id} --out {report_dir}")
        self._hub("report", self.experiment_id, "--out", str(report_dir))
        self.log(f"exporting the dashboards: hub dashboards export {dashboards_dir}")
        self._hub("dashboards", "export", str(dashboards_dir), "--experiment", self.experiment_id, "--alert-rules")
        self.truth["hub"] = self.hub_view()
        (self.out / "ground-truth.json").write_text(json.dumps(self.truth, indent=2, default=str) + "\n")

    def _print_where_to_look(self) -> None:
        t, hub = self.truth, self.truth["hub"]
        fault = t["fault"]
        abort = next((a for a in hub["alerts"] if a["severity"] == "abort"), None)
        started = t.get("started_at") or 0
        say = self.say
        say("")
        say(f"== what was injected, and what the hub reported ({self.experiment_id}) ==")
        say(f"fault:    primary fails {fault['rate']:.0%} of GET {fault['route']} with {fault['status']}, "
            f"T+{fault['injected_at'] - started:.1f}s .. T+{fault.get('removed_at', 0) - started:.1f}s "
            f"(removed by the {fault.get('removed_by')})")
        if abort:
            say(f"abort:    rule {abort['rule']} fired at T+{abort['first_firing'] - started:.1f}s, "
                f"{abort['first_firing'] - fault['injected_at']:.1f}s after the fault; halt target called "
                f"{len(t.get('halt_calls', []))} time(s), {hub['halt_actions']} halt action(s) recorded")
        else:
            say("abort:    no abort rule fired")
        say(f"report:   first route the fault changed: {hub.get('report_first_route') or '-'} "
            f"(injected on {fault['route']})")
        diff = {r: v for r, v in hub["shadow"].items() if v["differing"]}
        where = ", ".join(f"{r} ({v['differing']}/{v['pairs']} pairs)" for r, v in diff.items()) or "no route"
        say(f"shadow:   real differences on {where} (made to differ: {SHADOW_DIFF_ROUTE}, field {SHADOW_DIFF_FIELD})")
        say("")
        say("== where to look ==")
        env = f"HUB_HOME={self.o.home}"
        say(f"report:      {self.out / 'report' / 'report.md'}  (and report.html, the plots)")
        say(f"dashboards:  {self.out / 'dashboards'}  (Grafana provisioning: dashboards and alert rules)")
        say(f"truth:       {self.out / 'ground-truth.json'}")
        say(f"status:      {env} .venv/bin/hub status")
        say(f"timeline:    {env} .venv/bin/hub experiment history {self.experiment_id}")
        say(f"SQL to try:  {env} .venv/bin/hub sql \"SELECT phase, count() AS requests, round(avg(status >= 500), 4) "
            f"AS error_rate FROM hub.requests WHERE experiment_id = '{self.experiment_id}' AND leg = 'primary' "
            "GROUP BY phase\"")
        say(f"             {env} .venv/bin/hub sql \"SELECT time, rule, severity, status, observed FROM hub.alerts "
            f"WHERE experiment_id = '{self.experiment_id}' AND kind = 'alert' ORDER BY time\"")
        say(f"             {env} .venv/bin/hub questions ask fault-attribution --experiment {self.experiment_id}")
        if not self.o.stop:
            say(f"The hub keeps running in {self.o.home}; stop it with  {env} .venv/bin/hub down")


def _markdown_rows(text: str, heading: str) -> list[list[str]]:
    """The table rows (cells stripped, the header and rule rows dropped) of the section under
    ``## heading`` (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not match:
        return []
    rows = []
    for line in match.group(1).splitlines():
        if line.startswith("|") and not re.match(r"^\|[-| :]+\|$", line):
            rows.append([c.strip().strip("`") for c in line.strip().strip("|").split("|")])
    return rows


def report_first_route(text: str) -> str:
    """The route ranked first among those a fault changed in a report (``Faults and what each changed``)."""
    for cells in _markdown_rows(text, "Faults and what each changed"):
        if cells and cells[0] == "1" and len(cells) > 1:
            return cells[1]
    return ""


def report_shadow_routes(text: str) -> dict[str, int]:
    """Route -> differing pairs, from the report's shadow comparison table."""
    rows = _markdown_rows(text, "Shadow comparison")
    if not rows:
        return {}
    header = [h.lower() for h in rows[0]]
    if "route" not in header or "differing" not in header:
        return {}
    r, d = header.index("route"), header.index("differing")
    out = {}
    for cells in rows[1:]:
        try:
            out[cells[r]] = int(cells[d].replace(",", ""))
        except (IndexError, ValueError):
            continue
    return out
