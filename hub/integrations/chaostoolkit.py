"""Chaos Toolkit: a control that writes a run's lifecycle and activities onto the hub experiment's timeline, and an importer for finished journals.

As a control, declared in the Chaos Toolkit experiment::

    "controls": [{"name": "gameday-hub",
                  "provider": {"type": "python", "module": "hub.integrations.chaostoolkit",
                               "arguments": {"experiment_id": "patient-api-db-failover",
                                             "bootstrap": "kafka-1:9092"}}}]

Chaos Toolkit (``chaoslib.control.python``) calls the module's functions with ``context`` (the
experiment, hypothesis or activity), ``state`` on the ``after_*`` calls (the journal, the
hypothesis result, the activity's run) and the provider's ``arguments`` as keyword arguments.
Every function here catches everything and logs it: a hub that is down never stops a run.

What is recorded (the same rules for the live control and for ``import_journal``):

- start: the hub experiment is started (it must be ``ready``; a draft only with
  ``force_start: true``), with a note naming the Chaos Toolkit experiment.
- phases: entering the method, the steady-state check after it, and the rollbacks move the hub
  experiment to ``injection``, ``observation`` and ``recovery`` when the definition has those
  phases (``phases`` argument to change the mapping).
- a method action -> ``fault_injected`` at its start (action = activity name, target = what the
  provider hits, injector ``chaostoolkit``); the live control records it when the action returns,
  with the run's own start and end (``pauses`` excluded), so the live and the imported timeline
  have the same fault windows; if the action fails the fault is removed at its end,
  with a note. A rollback action -> ``fault_removed`` at its end for the open fault it undoes
  (same target group: the python module's package, the URL's host, the process executable;
  else the latest open fault). A method action named in ``restores``, or whose name starts with
  start/restart/restore/resume/recover/enable/uncordon/undo/heal/rollback and matches an open
  fault's target group, removes instead of injecting.
- probes: a note only when a method or rollback probe fails; a steady-state check that is not
  met is one ``surprise`` note (expected: the hypothesis holds; actual: the probes out of tolerance).
- end: faults still open are removed at the run's end (Chaos Toolkit actions without a rollback
  have no other end). ``status: completed`` without deviation completes the hub experiment; any
  other outcome (``failed``, ``aborted``, ``interrupted``, or a deviated steady state) aborts it,
  ``by`` ``chaostoolkit``, with the reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import threading
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol
from urllib.parse import urlsplit

from hub.experiments import lifecycle
from hub.experiments.events import Event, FaultInjected
from hub.experiments.lifecycle import ExperimentState

__all__ = [
    "configure_control", "cleanup_control",
    "before_experiment_control", "after_experiment_control",
    "before_hypothesis_control", "after_hypothesis_control",
    "before_method_control", "after_method_control",
    "before_rollback_control", "after_rollback_control",
    "before_activity_control", "after_activity_control",
    "Recorder", "LocalTimeline", "ServiceTimeline", "journal_events", "import_journal", "parse_time",
]

log = logging.getLogger("hub.integrations.chaostoolkit")
INJECTOR = "chaostoolkit"
DEFAULT_PHASES: Mapping[str, str] = {"method": "injection", "hypothesis-after": "observation", "rollbacks": "recovery"}
_RESTORE_VERBS = ("start", "restart", "restore", "resume", "recover", "enable", "uncordon", "undo", "heal", "rollback",
                  "unblock", "reconnect")
UTC = dt.timezone.utc


def parse_time(value: Any) -> dt.datetime | None:
    """A journal time (ISO 8601; naive ones are UTC, as ``datetime.utcnow()`` wrote them)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# ---- where events go ----------------------------------------------------------------------------
class Timeline(Protocol):
    def state(self) -> ExperimentState: ...
    def command(self, decide: Callable[[ExperimentState], Event | list[Event]]) -> list[Event]: ...


class LocalTimeline:
    """An experiment folded in memory: commands are decided and applied here, nothing is published."""

    def __init__(self, state: ExperimentState):
        self._state = state
        self.events: list[Event] = []

    def state(self) -> ExperimentState:
        return self._state

    def command(self, decide):
        decided = decide(self._state)
        events = decided if isinstance(decided, list) else [decided]
        for event in events:
            self._state = lifecycle.apply(self._state, event)
        self.events.extend(events)
        return events


class ServiceTimeline:
    """One experiment on the log, through ``ExperimentService``."""

    def __init__(self, service, experiment_id: str):
        self.service = service
        self.experiment_id = experiment_id
        self.events: list[Event] = []

    def state(self) -> ExperimentState:
        return self.service.get(self.experiment_id)

    def command(self, decide):
        events = self.service.command(self.experiment_id, decide)
        self.events.extend(events)
        return events


# ---- what an activity touches ---------------------------------------------------------------------
def _scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, (str, bool, int, float)) and not (isinstance(value, float) and value != value):
        return value[:200] if isinstance(value, str) else value
    return json.dumps(value, sort_keys=True, default=str)[:200]


def _mapping(value: object) -> Mapping:
    """``value`` if it is a mapping, else an empty one (a journal's parts may be anything)."""
    return value if isinstance(value, Mapping) else {}


def describe(activity: Mapping) -> tuple[str, str, dict]:
    """``(target, target group, parameters)`` of an activity, from its provider."""
    provider = _mapping(activity.get("provider"))
    kind = str(provider.get("type") or "")
    params: dict = {"provider": kind or "unknown"}
    if kind == "python":
        module, func = str(provider.get("module") or ""), str(provider.get("func") or "")
        args = _mapping(provider.get("arguments"))
        params.update(module=module, func=func)
        params.update({f"arg.{k}": _scalar(v) for k, v in args.items() if k not in ("secrets", "configuration")})
        shown = " ".join(f"{k}={_scalar(v)}" for k, v in args.items() if isinstance(v, (str, int, float)))
        target = f"{module}.{func}" + (f" ({shown})" if shown else "")
        group = module.rsplit(".", 1)[0] if "." in module else module
    elif kind == "http":
        url = str(provider.get("url") or "")
        parts = urlsplit(url)
        target = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url.split("?")[0]
        params.update(method=str(provider.get("method") or "GET"), url=target)
        group = parts.netloc or target
    elif kind == "process":
        path = str(provider.get("path") or "")
        arguments = provider.get("arguments")
        arguments = " ".join(map(str, arguments)) if isinstance(arguments, list) else str(arguments or "")
        target = f"{path} {arguments}".strip()
        params.update(path=path, arguments=arguments[:200])
        group = path
    else:
        target = str(activity.get("name") or "unknown")
        group = target
    return (target or str(activity.get("name") or "unknown"))[:300], group, params


def _reason(run: Mapping) -> str:
    exc = run.get("exception")
    if isinstance(exc, list) and exc:
        lines = [line.strip() for line in exc if isinstance(line, str) and line.strip()]
        if lines:
            return lines[-1][:300]
    if isinstance(exc, str) and exc.strip():
        return exc.strip().splitlines()[-1][:300]
    if run.get("tolerance_met") is False:
        return "output not within tolerance"
    return str(run.get("status") or "failed")


def _failed(run: Mapping) -> bool:
    return run.get("status") == "failed" or run.get("tolerance_met") is False


# ---- the rules -----------------------------------------------------------------------------------
class Recorder:
    """Turns Chaos Toolkit's steps into lifecycle commands on a timeline, at given times.

    Never raises: a refused or failed command is logged and kept in ``errors``.
    """

    def __init__(self, timeline: Timeline, *, actor: str = INJECTOR, force_start: bool = False,
                 phases: Mapping[str, str] | None = None, restores: Iterable[str] = (), log_problems: bool = True):
        self.timeline = timeline
        # the live control logs each problem (its only channel); an import returns them to be printed once
        self.log_problems = log_problems
        self.actor = actor
        self.force_start = force_start
        self.phases = dict(DEFAULT_PHASES if phases is None else phases)
        self.restores = set(restores)
        self.section = ""
        self.method_started = False
        self.method_done = False
        self.open: list[tuple[str, str, str]] = []  # (fault_id, group, action name), in injection order
        self._current: dict[int, str] = {}  # id(activity) -> fault id injected at its start
        self.errors: list[str] = []

    def _do(self, what: str, decide) -> list[Event]:
        try:
            return self.timeline.command(decide)
        except Exception as exc:  # never into Chaos Toolkit
            message = f"{what}: {exc}"
            self.errors.append(message)
            self._warn("gameday-hub: could not record %s", message)
            return []

    def _state(self) -> ExperimentState | None:
        try:
            return self.timeline.state()
        except Exception as exc:
            self.errors.append(f"read the experiment: {exc}")
            self._warn("gameday-hub: cannot read the experiment: %s", exc)
            return None

    def _warn(self, message: str, *args) -> None:
        if self.log_problems:
            log.warning(message, *args)

    def note(self, t: dt.datetime, text: str, *, kind: Literal["observation", "surprise"] = "observation", expected: str = "", actual: str = "",
             tags: Iterable[str] = ()) -> None:
        self._do("a note", lambda s: lifecycle.add_note(s, text[:2000], self.actor, t, note_kind=kind,
                                                         expected=expected[:2000], actual=actual[:2000],
                                                         tags=["chaostoolkit", *tags]))

    # -- lifecycle --
    def experiment_started(self, t: dt.datetime, title: str = "") -> None:
        state = self._state()
        if state is None:
            return
        if state.status in ("ready", "draft"):
            if state.status == "draft" and not self.force_start:
                self.errors.append(f"experiment {state.id} is a draft: not started")
                self._warn("gameday-hub: experiment %s is a draft (prerequisites not done); not started. "
                           "Check its prerequisites, or give the control force_start: true", state.id)
            else:
                self._do("the start", lambda s: lifecycle.start(s, self.actor, t, force=self.force_start))
        elif state.status != "running":
            self.errors.append(f"experiment {state.id} is {state.status}")
            self._warn("gameday-hub: experiment %s is %s; the run is not recorded as its start", state.id, state.status)
        self.note(t, f"Chaos Toolkit experiment '{title or 'untitled'}' started", tags=["run"])

    def enter(self, section: str, t: dt.datetime) -> None:
        self.section = section
        if section == "method":
            self.method_started = True
        phase = self.phases.get(section)
        state = self._state()
        if not phase or state is None or state.status != "running" or state.phase == phase:
            return
        if phase not in [p.name for p in state.definition.phases]:
            return
        self._do(f"phase {phase}", lambda s: lifecycle.change_phase(s, phase, self.actor, t))

    def _is_restore(self, activity: Mapping, group: str) -> bool:
        name = str(activity.get("name") or "")
        if self.section == "rollbacks" or name in self.restores:
            return True
        provider = _mapping(activity.get("provider"))
        firsts = [re.split(r"[-_.\s]+", str(text).lower())[0] for text in (name, provider.get("func") or "")]
        return any(w in _RESTORE_VERBS for w in firsts) and any(g == group for _, g, _ in self.open)

    def activity_started(self, activity: Mapping, t: dt.datetime) -> None:
        if activity.get("type") != "action" or self.section not in ("method", "rollbacks"):
            return
        target, group, params = describe(activity)
        if self._is_restore(activity, group):
            return  # removed at its end
        events = self._do(f"fault {activity.get('name')}", lambda s: lifecycle.inject_fault(
            s, str(activity.get("name") or "chaostoolkit-action")[:200], target, self.actor, t,
            parameters=params, injector=INJECTOR))
        injected = events[0] if events else None
        if isinstance(injected, FaultInjected):
            self.open.append((injected.fault_id, group, str(activity.get("name") or "")))
            self._current[id(activity)] = injected.fault_id

    def _remove(self, fault_id: str, t: dt.datetime) -> None:
        self.open = [o for o in self.open if o[0] != fault_id]
        self._do(f"removing {fault_id}", lambda s: lifecycle.remove_fault(s, fault_id, self.actor, t))

    def activity_ended(self, activity: Mapping, run: Mapping | None, t: dt.datetime) -> None:
        run = run if isinstance(run, Mapping) else {}
        name = str(activity.get("name") or "unnamed")
        kind = activity.get("type")
        if self.section not in ("method", "rollbacks"):
            return  # steady-state probes: judged as a whole in hypothesis_ended
        if kind == "probe":
            if _failed(run):
                self.note(t, f"Chaos Toolkit probe '{name}' failed: {_reason(run)}", tags=["probe"])
            return
        if kind != "action":
            return
        injected = self._current.pop(id(activity), None)
        if injected is not None:
            if _failed(run):
                self.note(t, f"Chaos Toolkit action '{name}' failed: {_reason(run)}; its fault is taken as removed",
                          tags=["action"])
                self._remove(injected, t)
            return
        # a rollback, or a restoring action of the method
        if _failed(run):
            self.note(t, f"Chaos Toolkit rollback '{name}' failed: {_reason(run)}", tags=["rollback"])
            return
        _, group, _ = describe(activity)
        match = [o for o in self.open if o[1] == group] or self.open
        if match:
            self._remove(match[-1][0], t)

    def hypothesis_ended(self, result: Mapping | None, t: dt.datetime, title: str = "") -> None:
        if not isinstance(result, Mapping) or result.get("steady_state_met", True) is not False:
            return
        when = "before the method" if not self.method_started else "after the method"
        probes = [p for p in result.get("probes") or [] if isinstance(p, Mapping) and _failed(p)]
        actual = "; ".join(f"{(p.get('activity') or {}).get('name', 'probe')}: {_reason(p)}" for p in probes)
        self.note(t, f"Chaos Toolkit steady state '{title or 'hypothesis'}' not met {when}", kind="surprise",
                  expected=f"the steady-state hypothesis holds {when}", actual=actual or "not within tolerance",
                  tags=["steady-state"])

    def experiment_ended(self, journal: Mapping | None, t: dt.datetime) -> None:
        journal = journal if isinstance(journal, Mapping) else {}
        for fault_id, _, _ in list(reversed(self.open)):
            self._remove(fault_id, t)
        state = self._state()
        if state is None or state.status not in ("running", "ready"):
            return
        status = str(journal.get("status") or "unknown")
        deviated = bool(journal.get("deviated"))
        if status == "completed" and not deviated:
            self._do("the completion", lambda s: lifecycle.complete(
                s, self.actor, t, "Chaos Toolkit run completed; the steady state held"))
            return
        if deviated:
            reason = f"Chaos Toolkit run {status}: the steady state deviated after the method"
        elif status == "failed" and not self.method_started:
            reason = "Chaos Toolkit run failed: the steady state was not met before the method (nothing injected)"
        else:
            reason = f"Chaos Toolkit run {status}"
        self._do("the abort", lambda s: lifecycle.abort(s, reason, INJECTOR, t, actor=self.actor))


# ---- finished journals ---------------------------------------------------------------------------
def _replay(recorder: Recorder, journal: Mapping) -> None:
    if not isinstance(journal, Mapping) or "experiment" not in journal or "start" not in journal:
        raise ValueError("not a Chaos Toolkit journal (expected experiment, start, status, run ...)")
    start = parse_time(journal.get("start"))
    if start is None:
        raise ValueError(f"journal start {journal.get('start')!r} is not a time")
    end = parse_time(journal.get("end")) or start
    experiment = journal.get("experiment") or {}
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    title = str(hypothesis.get("title") or "")
    states = journal.get("steady_states") or {}

    def first(runs, key="start", default=None):
        for r in runs or []:
            t = parse_time(r.get(key)) if isinstance(r, Mapping) else None
            if t:
                return t
        return default

    def last_end(runs, default):
        ends = [parse_time(r.get("end")) for r in runs or [] if isinstance(r, Mapping)]
        times = [t for t in ends if t]
        return max(times) if times else default

    recorder.experiment_started(start, str(experiment.get("title") or ""))
    before = states.get("before")
    if isinstance(before, Mapping):
        recorder.enter("hypothesis-before", first(before.get("probes"), default=start))
        recorder.hypothesis_ended(before, last_end(before.get("probes"), start), title)
    runs = [r for r in journal.get("run") or [] if isinstance(r, Mapping)]
    if runs:
        recorder.enter("method", first(runs, default=start))
        for r in runs:
            activity = r.get("activity") or {}
            recorder.activity_started(activity, parse_time(r.get("start")) or start)
            recorder.activity_ended(activity, r, parse_time(r.get("end")) or parse_time(r.get("start")) or start)
        recorder.method_done = True
    after = states.get("after")
    if isinstance(after, Mapping):
        recorder.enter("hypothesis-after", first(after.get("probes"), default=end))
        recorder.hypothesis_ended(after, last_end(after.get("probes"), end), title)
    rollbacks = [r for r in journal.get("rollbacks") or [] if isinstance(r, Mapping)]
    if rollbacks:
        recorder.enter("rollbacks", first(rollbacks, default=end))
        for r in rollbacks:
            activity = r.get("activity") or {}
            recorder.activity_started(activity, parse_time(r.get("start")) or end)
            recorder.activity_ended(activity, r, parse_time(r.get("end")) or end)
    recorder.experiment_ended(journal, end)


def journal_events(state: ExperimentState, journal: Mapping, *, actor: str = INJECTOR, force_start: bool = True,
                   restores: Iterable[str] = (), phases: Mapping[str, str] | None = None) -> tuple[list[Event], list[str]]:
    """The events a finished journal adds to ``state`` (nothing published), and what could not be recorded."""
    timeline = LocalTimeline(state)
    recorder = Recorder(timeline, actor=actor, force_start=force_start, restores=restores, phases=phases,
                        log_problems=False)
    _replay(recorder, journal)
    return timeline.events, recorder.errors


def import_journal(journal: Mapping, experiment_id: str, service, *, actor: str = INJECTOR, force_start: bool = True,
                   restores: Iterable[str] = (), phases: Mapping[str, str] | None = None) -> tuple[list[Event], list[str]]:
    """Write a finished journal onto an experiment's timeline through ``service`` (an
    ``ExperimentService``), with the journal's times. Returns (events written, problems).

    A timeline never goes back in time: when the experiment was last changed after the journal's
    start, the earlier steps are stamped with that later time (``problems`` says so).
    """
    state = service.get(experiment_id)
    start = parse_time(journal.get("start")) if isinstance(journal, Mapping) else None
    problems = []
    if start is not None and start < state.updated_at:
        problems.append(f"the experiment was last changed at {state.updated_at.isoformat()}, after the journal's "
                        f"start {start.isoformat()}: steps before that are stamped {state.updated_at.isoformat()}")
    timeline = ServiceTimeline(service, experiment_id)
    recorder = Recorder(timeline, actor=actor, force_start=force_start, restores=restores, phases=phases,
                        log_problems=False)
    _replay(recorder, journal)
    return timeline.events, problems + recorder.errors


# ---- the control (module functions, as chaoslib calls them) ------------------------------------------
_LOCK = threading.Lock()
_RUN: dict[str, Any] = {}


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _recorder(experiment_id: str | None = None, bootstrap: str | None = None, topic: str | None = None,
              actor: str | None = None, force_start: bool = False, phases: Mapping[str, str] | None = None,
              restores: Iterable[str] = (), **_: Any) -> Recorder | None:
    with _LOCK:
        recorder = _RUN.get("recorder")
        if recorder is not None:
            return recorder
        if not experiment_id:
            log.warning("gameday-hub control: no experiment_id argument; nothing is recorded")
            return None
        from hub.experiments.service import ExperimentService
        from hub.settings import load_settings

        settings = load_settings()
        changes = {}
        if bootstrap:
            changes["kafka_bootstrap"] = bootstrap
        if topic:
            changes["topic_experiments"] = topic
        service = ExperimentService(settings.with_overrides(**changes) if changes else settings)
        recorder = Recorder(ServiceTimeline(service, experiment_id), actor=actor or INJECTOR,
                            force_start=bool(force_start), phases=phases, restores=restores or ())
        _RUN.update(recorder=recorder, service=service)
        return recorder


def _safe(fn):
    """``fn``, catching and logging everything. chaoslib passes ``state`` (and ``experiment``,
    ``configuration`` ...) only to a function whose ``inspect.signature`` names it: the wrapper
    keeps ``fn``'s signature (``functools.wraps`` sets ``__wrapped__``, which ``inspect`` follows)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # never into Chaos Toolkit
            log.warning("gameday-hub control %s failed", fn.__name__, exc_info=True)
            return None
    return wrapper


@_safe
def configure_control(experiment_id: str | None = None, bootstrap: str | None = None, topic: str | None = None,
                      actor: str | None = None, force_start: bool = False, phases: Mapping[str, str] | None = None,
                      restores: Iterable[str] = (), **kwargs: Any) -> None:
    """Called once when Chaos Toolkit loads the control: connect to the hub's experiment log."""
    cleanup_control()
    _recorder(experiment_id=experiment_id, bootstrap=bootstrap, topic=topic, actor=actor, force_start=force_start,
              phases=phases, restores=restores)


@_safe
def cleanup_control(**kwargs: Any) -> None:
    """Called when the run is over: close the connection to the log."""
    with _LOCK:
        service = _RUN.pop("service", None)
        _RUN.clear()
    if service is not None:
        service.close()


@_safe
def before_experiment_control(context: Mapping, **kwargs: Any) -> None:
    """Start the hub experiment (ready, or draft with ``force_start``) and note the run."""
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.experiment_started(_now(), str((context or {}).get("title") or ""))


@_safe
def before_hypothesis_control(context: Mapping, **kwargs: Any) -> None:
    recorder = _recorder(**kwargs)
    if recorder:
        section = "hypothesis-before" if not recorder.method_started else (
            "hypothesis-after" if recorder.method_done else recorder.section)
        recorder.enter(section, _now())


@_safe
def after_hypothesis_control(context: Mapping, state: Mapping | None = None, **kwargs: Any) -> None:
    """A steady state that is not met becomes a surprise note."""
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.hypothesis_ended(state, _now(), str((context or {}).get("title") or ""))


@_safe
def before_method_control(context: Mapping, **kwargs: Any) -> None:
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.enter("method", _now())


@_safe
def after_method_control(context: Mapping, state: Any = None, **kwargs: Any) -> None:
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.method_done = True
        recorder.section = ""


@_safe
def before_rollback_control(context: Mapping, **kwargs: Any) -> None:
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.enter("rollbacks", _now())


@_safe
def after_rollback_control(context: Mapping, state: Any = None, **kwargs: Any) -> None:
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.section = ""


@_safe
def before_activity_control(context: Mapping, **kwargs: Any) -> None:
    """Nothing is recorded yet: chaoslib calls this before the activity's ``pauses.before``, so
    the activity's own start is known only from its run (``after_activity_control``)."""
    _recorder(**kwargs)


@_safe
def after_activity_control(context: Mapping, state: Mapping | None = None, **kwargs: Any) -> None:
    """A method action's fault is recorded from its run: injected at the run's ``start``; a
    rollback or restoring action removes its fault at the run's ``end``; a failed action or method
    probe becomes a note. The run's own times leave out ``pauses.before`` and ``pauses.after``
    (chaoslib calls this after the pause), so the live timeline has the fault window an import of
    the journal records."""
    recorder = _recorder(**kwargs)
    if recorder:
        run = state if isinstance(state, Mapping) else {}
        now = _now()
        start = parse_time(run.get("start")) or now
        recorder.activity_started(context or {}, start)
        recorder.activity_ended(context or {}, run, parse_time(run.get("end")) or max(start, now))


@_safe
def after_experiment_control(context: Mapping, state: Mapping | None = None, **kwargs: Any) -> None:
    """Close open faults, then complete (completed, not deviated) or abort (anything else)."""
    recorder = _recorder(**kwargs)
    if recorder:
        recorder.experiment_ended(state, _now())
