"""Experiment commands and queries over the event log: used alike by the CLI and the HTTP API.

A command reads the experiment's timeline from ``hub.experiments``, lets the lifecycle decide
(an invalid transition raises and writes nothing), and appends the resulting events. Reads fold
the log; the log is small (lifecycle steps, not telemetry), so reading it whole is cheap.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from typing import Callable, Iterable

from hub.errors import UserError
from hub.experiments import lifecycle
from hub.experiments.definition import ExperimentDefinition
from hub.experiments.events import BadEvent, Event, decode_event, encode_event
from hub.experiments.lifecycle import ExperimentState
from hub.experiments.log import LogWriter, read_log
from hub.redaction.events import redact_event
from hub.redaction.policy import RedactionPolicy, load_policy
from hub.runtime.topics import ensure_topics
from hub.settings import Settings, load_settings


def default_actor(settings: Settings | None = None) -> str:
    """Who is acting: ``HUB_ACTOR`` (of ``settings``, else of the environment and hub.env), else user@host."""
    actor = (settings if settings is not None else load_settings()).actor
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UnknownExperiment(UserError):
    pass


class ExperimentService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = settings.topic_experiments
        self._writer: LogWriter | None = None
        self._policy: RedactionPolicy | None = None

    # ---- reading ---------------------------------------------------------------------------
    def events(self) -> list[Event]:
        out = []
        for _, _, value in read_log(self.settings.bootstrap, self.topic):
            try:
                out.append(decode_event(value))
            except BadEvent:
                continue  # the sink dead-letters it; the timeline ignores it
        return out

    def states(self) -> dict[str, ExperimentState]:
        states: dict[str, ExperimentState] = {}
        for event in self.events():
            try:
                states[event.experiment_id] = lifecycle.apply(states.get(event.experiment_id), event)
            except lifecycle.InvalidTransition:
                continue  # written concurrently by two commands: the first one wins
        return states

    def get(self, experiment_id: str) -> ExperimentState:
        state = self.states().get(experiment_id)
        if state is None:
            raise UnknownExperiment(f"no experiment {experiment_id!r} (see `hub experiment list`)")
        return state

    def history(self, experiment_id: str) -> list[Event]:
        events = [e for e in self.events() if e.experiment_id == experiment_id]
        if not events:
            raise UnknownExperiment(f"no experiment {experiment_id!r} (see `hub experiment list`)")
        return events

    # ---- writing ---------------------------------------------------------------------------
    def _append(self, experiment_id: str, events: Iterable[Event]) -> list[Event]:
        # free text is redacted before it reaches the log: the topic, the registry and every reader
        # of the timeline carry the same masked text as the store (docs/redaction.md)
        events = [redact_event(e, self._redaction()) for e in events]
        for event in events:
            if event.sequence == 1:
                lifecycle.apply(None, event)  # the masked definition is still one the fold takes
        if self._writer is None:
            ensure_topics(self.settings.bootstrap, {self.topic: self.settings.partitions})
            self._writer = LogWriter(self.settings.bootstrap, self.topic)
        self._writer.append(experiment_id, [encode_event(e) for e in events])
        return events

    def _redaction(self) -> RedactionPolicy:
        if self._policy is None:
            self._policy = load_policy(self.settings.redaction_policy)
        return self._policy

    def create(self, definition: ExperimentDefinition, actor: str | None = None) -> Event:
        created = lifecycle.create(definition, actor or default_actor(self.settings), now())
        if created.experiment_id in self.states():
            raise UserError(f"experiment {created.experiment_id!r} exists already; choose another id")
        [event] = self._append(created.experiment_id, [created])
        return event

    def command(self, experiment_id: str, decide: Callable[[ExperimentState], Event | list[Event]],
                attempts: int = 5) -> list[Event]:
        """Run one lifecycle decision against the current state and append what it returns.

        Another command on the same experiment may append between the read and the append: both
        events then carry the same sequence, and the fold keeps the one first in the log. So the
        log is read again after the append; if ours lost, the decision is made again on the state
        that won (where it may now be refused, e.g. "it is aborted") and appended again. Only an
        event the timeline accepted is returned."""
        for _ in range(attempts):
            state = self.get(experiment_id)
            decided = decide(state)
            events = self._append(experiment_id, decided if isinstance(decided, list) else [decided])
            after = self.get(experiment_id)
            if all(e.sequence <= after.version and after.event_ids[e.sequence - 1] == e.event_id for e in events):
                return events
        raise UserError(f"experiment {experiment_id!r}: {attempts} attempts in a row lost to concurrent commands "
                        "on the same experiment; try again")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def summarize(state: ExperimentState) -> dict:
    """The JSON-able view of an experiment's current state (CLI ``show --json``, API)."""
    return {
        "id": state.id, "title": state.title, "status": state.status, "phase": state.phase,
        "environment": state.definition.environment.kind, "risk": state.definition.environment.risk,
        "created_by": state.created_by, "created_at": state.created_at.isoformat(),
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "ended_at": state.ended_at.isoformat() if state.ended_at else None,
        "abort_reason": state.abort_reason, "aborted_by": state.aborted_by, "version": state.version,
        "prerequisites": [{"item": p.item, "done": p.done, "note": p.note} for p in state.prerequisites],
        "phases": [{"phase": s.phase, "start": s.start.isoformat(), "end": s.end.isoformat() if s.end else None}
                   for s in state.phase_history],
        "active_faults": [{"fault_id": f.fault_id, "action": f.action, "target": f.target,
                           "since": f.start.isoformat()} for f in state.faults.values()],
        "faults": [{"fault_id": f.fault_id, "action": f.action, "target": f.target, "injector": f.injector,
                    "parameters": f.parameters, "start": f.start.isoformat(),
                    "end": f.end.isoformat() if f.end else None} for f in state.fault_history],
        "notes": [{"note_id": n.note_id, "kind": n.note_kind, "text": n.text, "expected": n.expected,
                   "actual": n.actual, "tags": list(n.tags), "actor": n.actor, "time": n.time.isoformat(),
                   "phase": n.phase} for n in state.notes],
    }
