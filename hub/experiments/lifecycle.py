"""The experiment state machine: state is a fold over lifecycle events, and commands make new events.

Statuses and what moves between them::

    (none) --created--> draft --prerequisites checked, all done--> ready --started--> running
    draft --started with force--> running          running --completed--> completed
    ready/running --aborted--> aborted             ready --checked, not all done--> draft

Three kinds of functions live here:

- ``apply(state, event)`` and ``fold(events)``: pure. ``apply`` refuses (``InvalidTransition``)
  any event that the command helpers could not have produced for that state, so a fold accepts
  exactly the timelines that the helpers make, whatever wrote them to the log.
- Command helpers (``create``, ``check_prerequisites``, ``start`` ...): check a command against
  the current state and return the new event(s) without changing anything; the caller publishes
  them and folds them in. They number events ``state.version + 1`` onwards, so two writers racing
  on one experiment produce two events with the same sequence and the fold refuses the second:
  commands on one experiment must go through one writer at a time (re-read, retry).
- ``phase_at`` and ``active_faults_at``: which phase and faults were in force at an instant, with
  intervals closed at the start and open at the end, for correlating telemetry afterwards.

Event times: the helpers round ``now`` down to the millisecond (the precision of the ClickHouse
columns, so a re-read from the table folds to the same state) and never let a timeline go back in
time (a command from a machine whose clock is behind is stamped with the previous event's time);
``apply`` refuses an event older than its predecessor.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Final, Iterable, Literal, Mapping

import msgspec

from hub.errors import UserError
from hub.experiments.definition import (
    DefinitionError,
    ExperimentDefinition,
    definition_from_dict,
    definition_to_dict,
    derive_id,
)
from hub.experiments.events import (
    Event,
    ExperimentAborted,
    ExperimentCompleted,
    ExperimentCreated,
    ExperimentStarted,
    FaultInjected,
    FaultRemoved,
    NoteAdded,
    ParameterValue,
    PhaseChanged,
    PrerequisiteResult,
    PrerequisitesChecked,
)

__all__ = [
    "Status",
    "InvalidTransition",
    "InvalidCommand",
    "PhaseSpan",
    "FaultRecord",
    "Note",
    "ExperimentState",
    "apply",
    "fold",
    "create",
    "check_prerequisites",
    "start",
    "change_phase",
    "inject_fault",
    "remove_fault",
    "add_note",
    "abort",
    "complete",
    "phase_at",
    "active_faults_at",
]

UTC: Final = timezone.utc
Status = Literal["draft", "ready", "running", "aborted", "completed"]


class InvalidTransition(UserError):
    """An event or command that the experiment's current state does not allow."""

    def __init__(self, message: str, experiment_id: str = "", status: str = ""):
        super().__init__(message)
        self.experiment_id = experiment_id
        self.status = status


class InvalidCommand(UserError):
    """A command argument that no state would accept (an empty note, a naive timestamp ...)."""


# ---- state ----------------------------------------------------------------------------------
class PhaseSpan(msgspec.Struct, frozen=True, kw_only=True):
    """One stretch of one phase: ``[start, end)``; ``end`` is None while it lasts."""

    phase: str
    start: datetime
    end: datetime | None = None


class FaultRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One injected fault: in force during ``[start, end)``; ``end`` is None while active."""

    fault_id: str
    action: str
    target: str
    parameters: dict[str, ParameterValue]
    injector: str
    start: datetime
    injected_by: str
    phase: str  # the phase it was injected in
    end: datetime | None = None
    removed_by: str = ""


class Note(msgspec.Struct, frozen=True, kw_only=True):
    """An observation or a surprise, with the phase it was written in ("" outside the run)."""

    note_id: str
    note_kind: str
    text: str
    expected: str
    actual: str
    tags: tuple[str, ...]
    actor: str
    time: datetime
    phase: str


class ExperimentState(msgspec.Struct, frozen=True, kw_only=True):
    """An experiment as of its event number ``version``. Never changed in place: ``apply`` makes
    a new one, so an earlier state stays valid (tuples rather than lists for that reason)."""

    id: str
    title: str
    status: Status
    definition: ExperimentDefinition
    created_by: str
    created_at: datetime
    updated_at: datetime  # time of the last event
    version: int  # sequence of the last event
    event_ids: tuple[str, ...]  # event_ids[n - 1] is the event with sequence n
    phase: str = ""  # current phase; "" before start and after the end
    phase_history: tuple[PhaseSpan, ...] = ()
    faults: dict[str, FaultRecord] = {}  # active faults by fault_id
    fault_history: tuple[FaultRecord, ...] = ()  # every fault, in injection order, active ones too
    notes: tuple[Note, ...] = ()
    prerequisites: tuple[PrerequisiteResult, ...] = ()  # one per definition item, latest result
    prerequisites_checked_at: datetime | None = None
    prerequisites_checked_by: str = ""
    started_at: datetime | None = None
    forced_start: bool = False
    ended_at: datetime | None = None
    abort_reason: str = ""
    aborted_by: str = ""
    summary: str = ""
    forced_completion: bool = False

    @property
    def prerequisites_done(self) -> bool:
        return all(p.done for p in self.prerequisites)


# ---- what each event needs --------------------------------------------------------------------
# kind -> (what it does, in words for messages; statuses that allow it; the rule in words)
_ALLOWED: Final[dict[type, tuple[str, frozenset[str], str]]] = {
    PrerequisitesChecked: ("check the prerequisites of", frozenset({"draft", "ready"}),
                           "prerequisites are checked before the start (draft or ready)"),
    ExperimentStarted: ("start", frozenset({"ready", "draft"}),
                        "an experiment starts once, from ready (or from draft with force)"),
    PhaseChanged: ("change the phase of", frozenset({"running"}), "phases change only while running"),
    FaultInjected: ("inject a fault into", frozenset({"running"}), "faults are injected only while running"),
    FaultRemoved: ("remove a fault from", frozenset({"draft", "ready", "running", "aborted", "completed"}), ""),
    NoteAdded: ("add a note to", frozenset({"draft", "ready", "running", "aborted", "completed"}), ""),
    ExperimentAborted: ("abort", frozenset({"ready", "running"}), "only a ready or running experiment can be aborted"),
    ExperimentCompleted: ("complete", frozenset({"running"}), "only a running experiment can be completed"),
}


def _refuse(state: ExperimentState, verb: str, why: str) -> InvalidTransition:
    return InvalidTransition(f"cannot {verb} experiment {state.id}: it is {state.status}; {why}",
                             state.id, state.status)


def apply(state: ExperimentState | None, event: Event) -> ExperimentState:
    """The state after ``event``; ``InvalidTransition`` if the event cannot follow ``state``.

    An event seen again (same sequence and ``event_id`` as one already applied, as after an
    at-least-once redelivery) leaves the state as it is.
    """
    eid = event.experiment_id
    if state is None:
        if not isinstance(event, ExperimentCreated):
            raise InvalidTransition(
                f"experiment {eid} does not exist: its timeline must begin with experiment_created, "
                f"got {event.__struct_config__.tag}", eid, "")
        if event.sequence != 1:
            raise InvalidTransition(
                f"experiment {eid}: experiment_created must have sequence 1, got {event.sequence}", eid, "")
        return _created(event)

    if eid != state.id:
        raise InvalidTransition(f"event {event.event_id} belongs to experiment {eid}, not to {state.id}",
                                state.id, state.status)
    if 1 <= event.sequence <= state.version and state.event_ids[event.sequence - 1] == event.event_id:
        return state  # the same event again
    if event.sequence != state.version + 1:
        if event.sequence <= state.version:
            problem = (f"sequence {event.sequence} is already taken by event {state.event_ids[event.sequence - 1]} "
                       "(another command was recorded first: re-read the experiment and retry)")
        else:
            problem = f"events {state.version + 1} to {event.sequence - 1} are missing"
        raise InvalidTransition(
            f"experiment {state.id} is at version {state.version} and expects sequence {state.version + 1}: {problem}",
            state.id, state.status)
    t = _utc(event.time)
    if t < state.updated_at:
        raise InvalidTransition(
            f"experiment {state.id}: event {event.sequence} at {t.isoformat()} is earlier than the previous "
            f"event at {state.updated_at.isoformat()}", state.id, state.status)
    if isinstance(event, ExperimentCreated):
        raise InvalidTransition(f"experiment {state.id} already exists (it is {state.status}); "
                                "create a new experiment with another id", state.id, state.status)

    verb, statuses, why = _ALLOWED[type(event)]
    if state.status not in statuses:
        raise _refuse(state, verb, why)
    base = dict(version=event.sequence, updated_at=t, event_ids=state.event_ids + (event.event_id,))
    replace = msgspec.structs.replace

    if isinstance(event, PrerequisitesChecked):
        return replace(state, **base, **_checked_prerequisites(state, event, t))

    if isinstance(event, ExperimentStarted):
        if not event.forced and state.status != "ready":
            raise _refuse(state, verb, _not_ready_reason(state))
        return replace(state, **base, status="running", started_at=t, forced_start=event.forced)

    if isinstance(event, PhaseChanged):
        defined = [p.name for p in state.definition.phases]
        if event.phase not in defined:
            raise _refuse(state, verb, f"phase {event.phase!r} is not defined (defined: {', '.join(defined)})")
        if event.phase == state.phase:
            raise _refuse(state, verb, f"it is already in phase {event.phase!r}")
        history = _close_phase(state.phase_history, t) + (PhaseSpan(phase=event.phase, start=t),)
        return replace(state, **base, phase=event.phase, phase_history=history)

    if isinstance(event, FaultInjected):
        if any(f.fault_id == event.fault_id for f in state.fault_history):
            raise _refuse(state, verb, f"fault id {event.fault_id!r} is already used in this experiment")
        fault = FaultRecord(fault_id=event.fault_id, action=event.action, target=event.target,
                            parameters=dict(event.parameters), injector=event.injector, start=t,
                            injected_by=event.actor, phase=state.phase)
        return replace(state, **base, faults={**state.faults, event.fault_id: fault},
                       fault_history=state.fault_history + (fault,))

    if isinstance(event, FaultRemoved):
        removed = state.faults.get(event.fault_id)
        if removed is None:
            was = " (it was removed already)" if any(r.fault_id == event.fault_id for r in state.fault_history) else ""
            active = ", ".join(state.faults) or "none"
            raise _refuse(state, verb, f"fault {event.fault_id!r} is not active{was}; active faults: {active}")
        ended = replace(removed, end=t, removed_by=event.actor)
        faults = {k: v for k, v in state.faults.items() if k != event.fault_id}
        fault_history = tuple(ended if r.fault_id == event.fault_id else r for r in state.fault_history)
        return replace(state, **base, faults=faults, fault_history=fault_history)

    if isinstance(event, NoteAdded):
        if any(n.note_id == event.note_id for n in state.notes):
            raise _refuse(state, verb, f"note id {event.note_id!r} is already used in this experiment")
        note = Note(note_id=event.note_id, note_kind=event.note_kind, text=event.text, expected=event.expected,
                    actual=event.actual, tags=tuple(event.tags), actor=event.actor, time=t, phase=state.phase)
        return replace(state, **base, notes=state.notes + (note,))

    if isinstance(event, ExperimentAborted):
        # Active faults stay active: aborting says stop, removing the fault is the injector's act.
        return replace(state, **base, status="aborted", ended_at=t, phase="",
                       phase_history=_close_phase(state.phase_history, t),
                       abort_reason=event.reason, aborted_by=event.by)

    if isinstance(event, ExperimentCompleted):
        if state.faults and not event.forced:
            raise _refuse(state, verb, _open_faults_reason(state))
        return replace(state, **base, status="completed", ended_at=t, phase="",
                       phase_history=_close_phase(state.phase_history, t),
                       summary=event.summary, forced_completion=event.forced)

    raise InvalidTransition(f"experiment {state.id}: unknown event type {type(event).__name__}",
                            state.id, state.status)  # pragma: no cover - the union is closed


def fold(events: Iterable[Event],
         on_invalid: Callable[[Event, InvalidTransition], None] | None = None) -> dict[str, ExperimentState]:
    """Every experiment's state after ``events`` (in log order), by experiment id.

    An invalid event raises ``InvalidTransition``, or, with ``on_invalid``, is reported to it and
    skipped (a consumer of the log dead-letters it and keeps folding).
    """
    states: dict[str, ExperimentState] = {}
    for event in events:
        try:
            states[event.experiment_id] = apply(states.get(event.experiment_id), event)
        except InvalidTransition as exc:
            if on_invalid is None:
                raise
            on_invalid(event, exc)
    return states


def _created(event: ExperimentCreated) -> ExperimentState:
    eid = event.experiment_id
    try:
        defn = definition_from_dict(event.definition, source=f"experiment {eid} definition")
    except DefinitionError as exc:
        raise InvalidTransition(str(exc), eid, "") from None
    if defn.id != eid:
        raise InvalidTransition(f"experiment {eid}: the definition's id is {defn.id!r}, not {eid!r}", eid, "")
    t = _utc(event.time)
    return ExperimentState(
        id=eid, title=defn.title, status="draft", definition=defn, created_by=event.actor, created_at=t,
        updated_at=t, version=1, event_ids=(event.event_id,),
        prerequisites=tuple(PrerequisiteResult(item=p.item, done=p.done) for p in defn.prerequisites),
    )


def _checked_prerequisites(state: ExperimentState, event: PrerequisitesChecked, t: datetime) -> dict[str, Any]:
    # A check may cover some items only (people tick off their own); the others keep their last result.
    latest = {p.item: p for p in state.prerequisites}
    seen: set[str] = set()
    for r in event.results:
        if r.item not in latest:
            known = "; ".join(latest) or "the definition has none"
            raise _refuse(state, "check the prerequisites of", f"unknown prerequisite {r.item!r} (defined: {known})")
        if r.item in seen:
            raise _refuse(state, "check the prerequisites of", f"prerequisite {r.item!r} is listed twice")
        seen.add(r.item)
        latest[r.item] = r
    results = tuple(latest.values())
    status = "ready" if all(r.done for r in results) else "draft"
    return dict(prerequisites=results, status=status, prerequisites_checked_at=t,
                prerequisites_checked_by=event.actor)


def _not_ready_reason(state: ExperimentState) -> str:
    missing = [p.item for p in state.prerequisites if not p.done]
    if missing:
        return f"prerequisites not done: {'; '.join(missing)}; check them again when done, or start with force"
    return "the prerequisites have not been checked yet; check them (it becomes ready), or start with force"


def _open_faults_reason(state: ExperimentState) -> str:
    open_ = ", ".join(f"{f.fault_id} ({f.action} on {f.target})" for f in state.faults.values())
    return f"faults still active: {open_}; remove them first, or complete with force"


def _close_phase(history: tuple[PhaseSpan, ...], t: datetime) -> tuple[PhaseSpan, ...]:
    if history and history[-1].end is None:
        return history[:-1] + (msgspec.structs.replace(history[-1], end=t),)
    return history


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is UTC else t.astimezone(UTC)


# ---- commands -------------------------------------------------------------------------------
def _stamp(state: ExperimentState | None, now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidCommand(f"the command time must be a timezone-aware datetime, got {now!r}")
    t = _utc(now)
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    if state is not None and t < state.updated_at:
        t = state.updated_at
    return t


STATED_TIME_SKEW_S: Final = 2.0


def stated_time(state: ExperimentState, at: datetime | None, now: datetime) -> datetime:
    """The time a command records: ``now``, or ``at`` when the caller states when it happened (a
    fault put in place a moment before it could be recorded). A stated time is recorded as given,
    never moved: it is refused when it lies ahead of ``now`` (beyond 2 s of clock skew) or before
    the experiment's last event (its log stays in time order)."""
    if at is None:
        return now
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand(f"the stated time must be a timezone-aware datetime, got {at!r}")
    t = _utc(at)
    if (t - _utc(now)).total_seconds() > STATED_TIME_SKEW_S:
        raise InvalidCommand(f"the stated time {t.isoformat()} is in the future (now {_utc(now).isoformat()}); "
                             "record it when it has happened")
    if t < state.updated_at:
        raise InvalidCommand(f"the stated time {t.isoformat()} is before experiment {state.id}'s last event at "
                             f"{state.updated_at.isoformat()}; events are kept in time order, so state a time at or "
                             "after it (see `hub experiment history`)")
    return t


def _new(cls: type, state: ExperimentState, actor: str, now: datetime, sequence: int | None = None, **fields):
    """An event of ``cls`` that follows ``state``, checked field by field, then against the state."""
    event = cls(experiment_id=state.id, event_id=str(uuid.uuid4()), actor=actor, time=_stamp(state, now),
                sequence=sequence if sequence is not None else state.version + 1, **fields)
    _check_fields(event)
    return event


def _check_fields(event: Event) -> None:
    # The constructors check nothing; a round trip through msgspec applies every constraint, so
    # that a helper never returns an event that ``decode_event`` would refuse.
    try:
        msgspec.convert(msgspec.to_builtins(event), type(event))
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        field = where.rstrip("`").replace("$.", "") or "event"
        if message.startswith("Expected `str` of length >= 1"):
            message = "must not be empty"
        raise InvalidCommand(f"{event.__struct_config__.tag}: {field}: {message[:1].lower() + message[1:]}") from None


def create(defn: ExperimentDefinition, actor: str, now: datetime) -> ExperimentCreated:
    """The first event of a new experiment. Without ``defn.id`` the id is derived from the title
    with a random suffix (``ExperimentCreated.experiment_id`` tells which); checking that the id is
    not taken yet is the caller's job, since it needs the store."""
    experiment_id = defn.id or derive_id(defn.title)
    stored = definition_to_dict(msgspec.structs.replace(defn, id=experiment_id))
    event = ExperimentCreated(experiment_id=experiment_id, event_id=str(uuid.uuid4()), actor=actor,
                              time=_stamp(None, now), sequence=1, definition=stored)
    _check_fields(event)
    apply(None, event)  # validates the definition as the fold will
    return event


def check_prerequisites(state: ExperimentState, results: Iterable[PrerequisiteResult | Mapping[str, Any]],
                        actor: str, now: datetime) -> PrerequisitesChecked:
    """Record which prerequisites are done; all done makes the experiment ready."""
    try:
        checked = [r if isinstance(r, PrerequisiteResult) else msgspec.convert(dict(r), PrerequisiteResult)
                   for r in results]
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        raise InvalidCommand(f"prerequisite results: {exc}") from None
    event = _new(PrerequisitesChecked, state, actor, now, results=checked)
    apply(state, event)
    return event


def start(state: ExperimentState, actor: str, now: datetime, *, force: bool = False) -> list[Event]:
    """``[ExperimentStarted, PhaseChanged(first planned phase)]``: the first phase begins at start.

    Refused unless the experiment is ready (all prerequisites checked done); ``force`` starts a
    draft anyway and the event says so.
    """
    forced = force and state.status == "draft"
    started = _new(ExperimentStarted, state, actor, now, forced=forced)
    running = apply(state, started)
    first = _new(PhaseChanged, running, actor, started.time, phase=state.definition.phases[0].name)
    apply(running, first)
    return [started, first]


def change_phase(state: ExperimentState, phase: str, actor: str, now: datetime) -> PhaseChanged:
    """Move to another defined phase (any order; going back to an earlier phase is allowed)."""
    event = _new(PhaseChanged, state, actor, now, phase=phase)
    apply(state, event)
    return event


def inject_fault(state: ExperimentState, action: str, target: str, actor: str, now: datetime, *,
                 parameters: Mapping[str, ParameterValue] | None = None, injector: str | None = None,
                 fault_id: str | None = None) -> FaultInjected:
    """Record a fault put in place (while running). ``fault_id`` defaults to a new short id and must
    be new to the experiment; ``injector`` (the tool) defaults to ``actor``."""
    for key, value in (parameters or {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidCommand(f"fault_injected: parameters.{key}: expected a finite number, got {value!r}")
    event = _new(FaultInjected, state, actor, now, fault_id=fault_id or f"fault-{uuid.uuid4().hex[:8]}",
                 action=action, target=target, parameters=dict(parameters or {}), injector=injector or actor)
    apply(state, event)
    return event


def remove_fault(state: ExperimentState, fault_id: str, actor: str, now: datetime) -> FaultRemoved:
    """Record an active fault taken away; allowed after an abort or completion too (clean-up)."""
    event = _new(FaultRemoved, state, actor, now, fault_id=fault_id)
    apply(state, event)
    return event


def add_note(state: ExperimentState, text: str, actor: str, now: datetime, *,
             note_kind: Literal["observation", "surprise"] = "observation", expected: str = "",
             actual: str = "", tags: Iterable[str] = (), note_id: str | None = None) -> NoteAdded:
    """Record an observation or a surprise; allowed in every status, after the end too (the
    review keeps adding what was learnt)."""
    event = _new(NoteAdded, state, actor, now, note_id=note_id or f"note-{uuid.uuid4().hex[:8]}",
                 note_kind=note_kind, text=text, expected=expected, actual=actual, tags=list(tags))
    apply(state, event)
    return event


def abort(state: ExperimentState, reason: str, by: str, now: datetime, *,
          actor: str | None = None) -> ExperimentAborted:
    """Stop a ready or running experiment. ``by`` is who or what decided (a person or an abort
    condition); ``actor``, the writer of the event, defaults to ``by``. Active faults stay active
    until removed."""
    event = _new(ExperimentAborted, state, actor or by, now, reason=reason, by=by)
    apply(state, event)
    return event


def complete(state: ExperimentState, actor: str, now: datetime, summary: str = "", *,
             force: bool = False) -> ExperimentCompleted:
    """End a running experiment. Refused while faults are active (the message names them) unless
    ``force``: then they stay active in the state until removed, and the event says so."""
    event = _new(ExperimentCompleted, state, actor, now, summary=summary, forced=force and bool(state.faults))
    apply(state, event)
    return event


# ---- correlation ----------------------------------------------------------------------------
def phase_at(state: ExperimentState, t: datetime) -> str:
    """The phase in force at instant ``t`` (``[start, end)``), or "" outside every phase."""
    t = _utc(t)
    for span in reversed(state.phase_history):
        if span.start <= t and (span.end is None or t < span.end):
            return span.phase
    return ""


def active_faults_at(state: ExperimentState, t: datetime) -> list[FaultRecord]:
    """The faults in force at instant ``t`` (``[start, end)``), in injection order."""
    t = _utc(t)
    return [f for f in state.fault_history if f.start <= t and (f.end is None or t < f.end)]
