"""Spinnaker: a webhook receiver that turns Echo's pipeline and stage events into timeline notes on the experiment they touch.

Spinnaker's Echo service posts every event to a configured REST endpoint (``rest.endpoints`` in
``echo.yml``). An event is ``{"details", "content", "eventId", ...}`` (Echo's ``Event``); with the
endpoint's ``flatten: true`` ``details`` and ``content`` are JSON strings, with ``wrap: true`` the
event sits in ``{"eventName": ..., "<fieldName>": event}`` (default field ``payload``). Both are
accepted. Orca's events have ``details.type`` ``orca:pipeline|orchestration:starting|complete|failed``
(``EchoNotifyingExecutionListener``: ``content`` = ``execution`` and ``executionId``) and
``orca:stage:starting|complete|failed|skipped`` (``EchoNotifyingStageListener``: ``content`` =
``name``, ``stageId``, ``startTime``, ``endTime``, ``isSynthetic``, ``context``, ``executionId``,
``execution``). ``orca:task:*`` events (too fine-grained) and events whose ``details.source`` is
not ``orca`` are ignored.

- **Time**: a stage event is placed at the stage's ``startTime`` (starting) or ``endTime``, a
  pipeline event at the execution's ``startTime`` or ``endTime``; ``details.created`` when they are
  missing; never after its arrival. A timeline never goes back in time: an event that arrives
  after later events were recorded is placed right after them, tagged ``late``, and its text and
  the answer say when it happened.
- **Experiment**: the pipeline parameter ``experiment_id`` (or ``experiment``) of
  ``execution.trigger.parameters``, else the experiment whose definition lists the event's
  application in ``targets.services`` and that was running at the event's own time (else a ready
  one created by then; the latest started if several). A parameter that is not a string is a bad
  request; an event that happened after its experiment ended is recorded, marked ``after-run``.
- **Status**: Orca sends ``stage:failed`` for every status but SUCCEEDED and SKIPPED; the stage's
  own ``status`` and ``type`` come from ``execution.stages[id == stageId]``. Failures
  (``TERMINAL``, ``FAILED_CONTINUE``, ``STOPPED``) are ``surprise`` notes whose ``actual`` holds
  the reason: ``context.exception.details.errors``/``error``, a canary's ``canaryScoreMessage``
  and scores, the failed synthetic stages' errors; a cancellation names ``canceledBy`` and
  ``cancellationReason``.
- **Synthetic stages** (``content.isSynthetic``: Kayenta's waits and ``Run Canary #n``, a deploy's
  sub-stages) are not recorded by default (answer 200, ``ignored``); their scores and errors are
  folded into the parent stage's note. ``?synthetic=record`` records them too, tagged ``synthetic``.
- **Kayenta**: a ``kayentaCanary`` stage's end is a note tagged ``canary`` and ``kayenta`` with the
  verdict, the final score, the thresholds and Kayenta's message, and a row in ``canary_verdicts``
  (metric ``kayenta_score``, route ``/``) next to the hub's own canary judgment.
- **Deduplication**: the note id is derived from Echo's ``eventId``; an event posted again (Echo
  retries) finds its note already in the experiment's log and is answered 200 ``duplicate``. The
  log is the memory: nothing else is kept, and it holds across restarts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from hub.errors import HubError, UserError
from hub.experiments import lifecycle
from hub.experiments.lifecycle import ExperimentState

__all__ = ["NotSpinnakerEvent", "SpinnakerEvent", "parse_event", "spinnaker_event_to_note", "event_time",
           "kayenta_verdict", "add_spinnaker_routes", "ROUTE"]

ROUTE = "/v1/integrations/spinnaker"
ACTOR = "spinnaker"
#: The ``details.source`` of the events recorded: Orca's (Igor's, Gate's ... are ignored).
ORCA = "orca"
_PARAMETER_KEYS = ("experiment_id", "experiment")
#: Orca statuses that are failures of the stage or execution (``ExecutionStatus``).
FAILED = frozenset({"TERMINAL", "FAILED_CONTINUE", "STOPPED"})
_STATUS_WORDS = {"SUCCEEDED": "completed", "TERMINAL": "failed", "FAILED_CONTINUE": "failed (the pipeline went on)",
                 "STOPPED": "stopped", "CANCELED": "was canceled", "SKIPPED": "was skipped", "RUNNING": "started",
                 "NOT_STARTED": "started"}
_PHASE_STATUS = {"starting": "RUNNING", "complete": "SUCCEEDED", "failed": "TERMINAL", "skipped": "SKIPPED"}
#: Longest reason text kept in a note (the rest is cut with an ellipsis).
MAX_REASON_CHARS = 1000
KAYENTA_STAGE = "kayentaCanary"
_DEFAULT_DEPTH = 64


class NotSpinnakerEvent(UserError):
    """A payload that is not a Spinnaker Echo event."""


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _millis(value: Any) -> dt.datetime | None:
    if isinstance(value, bool):
        return None
    try:
        ms = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if ms <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _default_parse(text: str) -> Any:
    from hub.records.decode import too_deep

    if too_deep(text.encode("utf-8", "surrogatepass"), _DEFAULT_DEPTH):
        raise NotSpinnakerEvent(f"a flattened field is nested more than {_DEFAULT_DEPTH} levels deep")
    return json.loads(text)


def unwrap(payload: Any, parse: Callable[[str], Any] = _default_parse) -> dict:
    """Echo's event from a body sent with any endpoint setting: plain, ``wrap: true``
    (``{"eventName", "<fieldName>": event}``) and ``flatten: true`` (``details`` and ``content`` as
    JSON strings). ``NotSpinnakerEvent`` for anything else."""
    if isinstance(payload, dict) and "details" not in payload and "content" not in payload:
        inner = [v for k, v in payload.items() if k != "eventName" and isinstance(v, (dict, str))]
        if "eventName" in payload and len(inner) == 1:
            payload = inner[0]
            if isinstance(payload, str):
                payload = _parse_field(payload, parse, "the wrapped event")
    if not isinstance(payload, dict):
        raise NotSpinnakerEvent("not a Spinnaker event: expected an object with details.type and content")
    payload = dict(payload)
    for key in ("details", "content"):
        if isinstance(payload.get(key), str):  # flatten: true
            payload[key] = _parse_field(payload[key], parse, key)
    if not isinstance(payload.get("details"), dict) or not isinstance(payload["details"].get("type"), str) \
            or not isinstance(payload.get("content"), dict):
        raise NotSpinnakerEvent("not a Spinnaker event: expected an object with details.type and content")
    return payload


def _parse_field(text: str, parse: Callable[[str], Any], what: str) -> Any:
    try:
        return parse(text)
    except (ValueError, RecursionError):
        raise NotSpinnakerEvent(f"not a Spinnaker event: {what} is a string that is not JSON") from None


@dataclass
class SpinnakerEvent:
    """One Echo event read: what the note and the matching need."""

    kind: str                  # details.type
    level: str                 # pipeline | orchestration | stage | other
    phase: str                 # starting | complete | failed | skipped
    application: str
    event_id: str
    execution: dict
    content: dict
    stage: dict = field(default_factory=dict)   # execution.stages[id == stageId], else the content's view
    status: str = ""           # the stage's or execution's own status
    stage_type: str = ""
    synthetic: bool = False
    at: dt.datetime | None = None  # when it happened, by Spinnaker's own clock
    source: str = ""           # details.source (Orca's events say "orca")


def _stage_of(content: dict, execution: dict) -> dict:
    stage_id = content.get("stageId")
    for stage in execution.get("stages") or ():
        if isinstance(stage, dict) and stage_id is not None and stage.get("id") == stage_id:
            return stage
    return {}


def parse_event(payload: Any, parse: Callable[[str], Any] = _default_parse) -> SpinnakerEvent:
    """The event in an Echo body (any endpoint setting); ``NotSpinnakerEvent`` for other bodies."""
    payload = unwrap(payload, parse)
    details, content = payload["details"], payload["content"]
    kind = details["type"]
    parts = kind.split(":")
    level = parts[1] if len(parts) == 3 and parts[0] == "orca" and parts[1] in ("pipeline", "stage", "orchestration") \
        else "other"
    phase = parts[2] if len(parts) == 3 else ""
    execution = _dict(content.get("execution"))
    application = str(details.get("application") or execution.get("application") or "")
    source = details.get("source")
    event = SpinnakerEvent(kind=kind, level=level, phase=phase, application=application,
                           event_id=str(payload.get("eventId") or ""), execution=execution, content=content,
                           source=source if isinstance(source, str) else "")
    if level == "stage":
        event.stage = _stage_of(content, execution)
        event.status = str(event.stage.get("status") or _PHASE_STATUS.get(phase, phase.upper()))
        event.stage_type = str(event.stage.get("type") or "")
        event.synthetic = content.get("isSynthetic") is True or bool(event.stage.get("syntheticStageOwner"))
        if phase == "starting":
            event.status = "RUNNING"
    elif level != "other":
        status = str(execution.get("status") or "")
        event.status = "RUNNING" if phase == "starting" else (
            status if status and status not in ("RUNNING", "NOT_STARTED") else _PHASE_STATUS.get(phase, ""))
    event.at = event_time(event, details)
    return event


def event_time(event: SpinnakerEvent | dict, details: dict | None = None) -> dt.datetime | None:
    """When the event happened: a stage's ``startTime`` (starting) or ``endTime``, an execution's
    ``startTime`` or ``endTime``, else ``details.created``; None when none is given."""
    if isinstance(event, dict):
        details = _dict(event.get("details"))
        event = parse_event(event)
    ending = event.phase != "starting"
    sources: tuple[dict, ...]
    if event.level == "stage":
        sources = (event.content, event.stage)
    else:
        sources = (event.execution,)
    for source in sources:
        t = _millis(source.get("endTime" if ending else "startTime"))
        if t is not None:
            return t
    if ending and event.level == "stage":  # a skipped stage has no end; its start then
        for source in sources:
            t = _millis(source.get("startTime"))
            if t is not None:
                return t
    return _millis(_dict(details).get("created"))


def _parameter_experiment(execution: dict, content: dict) -> str | None:
    sources = []
    trigger = execution.get("trigger")
    if isinstance(trigger, dict) and isinstance(trigger.get("parameters"), dict):
        sources.append(trigger["parameters"])
    if isinstance(execution.get("parameters"), dict):
        sources.append(execution["parameters"])
    if isinstance(content.get("parameters"), dict):
        sources.append(content["parameters"])
    for params in sources:
        for key in _PARAMETER_KEYS:
            value = params.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if value is not None and not isinstance(value, str):
                raise NotSpinnakerEvent(f"the pipeline parameter {key} must be a string (an experiment id), "
                                        f"not {json.dumps(value)[:60]}")
    return None


def _by_application(application: str, experiments: Iterable[ExperimentState], at: dt.datetime | None) -> str | None:
    """The experiment running for ``application`` at ``at`` (its own time), else a ready one that
    existed by then; ``at`` None means now."""
    if not application:
        return None
    targeting = [s for s in experiments if application in s.definition.targets.services]
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    if at is None:
        running = [s for s in targeting if s.status == "running"]
    else:
        running = [s for s in targeting if s.started_at is not None and s.started_at <= at
                   and (s.ended_at is None or at <= s.ended_at)]
    if running:
        return max(running, key=lambda s: (s.started_at or epoch, s.created_at)).id
    ready = [s for s in targeting if s.status == "ready" and (at is None or s.created_at <= at)]
    if ready:
        return max(ready, key=lambda s: s.created_at).id
    return None


def _cut(text: str, limit: int = MAX_REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _errors(context: dict) -> list[str]:
    """The error texts Orca keeps in a stage context (``exception.details.errors``/``error``)."""
    details = _dict(_dict(context.get("exception")).get("details"))
    errors = details.get("errors")
    errors = [errors] if isinstance(errors, str) else errors if isinstance(errors, list) else []
    found = [str(e) for e in errors if isinstance(e, (str, int, float)) and not isinstance(e, bool) and str(e).strip()]
    if not found and isinstance(details.get("error"), str) and details["error"].strip():
        found.append(details["error"])
    for key in ("failureMessage", "errorMessage"):
        if not found and isinstance(context.get(key), str) and context[key].strip():
            found.append(context[key])
    return found


def _score_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _children(event: SpinnakerEvent, parent_id: Any) -> list[dict]:
    return [s for s in event.execution.get("stages") or () if isinstance(s, dict) and parent_id is not None
            and s.get("parentStageId") == parent_id]


def _descendants(event: SpinnakerEvent, parent_id: Any) -> list[dict]:
    found: list[dict] = []
    queue = [parent_id]
    while queue and len(found) < 1000:
        for child in _children(event, queue.pop()):
            found.append(child)
            queue.append(child.get("id"))
    return found


def _stage_reasons(event: SpinnakerEvent, stage: dict, context: dict) -> list[str]:
    """Why a stage failed: its own errors, the canary's message, then its failed synthetic stages'."""
    reasons = []
    if context.get("canaryScoreMessage"):
        reasons.append(str(context["canaryScoreMessage"]))
    reasons.extend(_errors(context))
    for child in _descendants(event, stage.get("id") or event.content.get("stageId")):
        if str(child.get("status") or "") in FAILED | {"CANCELED"}:
            child_context = _dict(child.get("context"))
            for text in _errors(child_context) + ([str(child_context["canaryScoreMessage"])]
                                                   if child_context.get("canaryScoreMessage") else []):
                reasons.append(f"{child.get('name') or child.get('type') or 'a synthetic stage'}: {text}")
    return list(dict.fromkeys(r for r in reasons if r.strip()))


def kayenta_verdict(event: SpinnakerEvent) -> dict | None:
    """A finished ``kayentaCanary`` stage's verdict: ``verdict`` (pass|fail|inconclusive),
    ``score`` (the final run's), ``scores``, ``pass``/``marginal`` thresholds, ``message``;
    None for other events."""
    context = _dict(event.stage.get("context")) or _dict(event.content.get("context"))
    is_kayenta = event.stage_type == KAYENTA_STAGE or (
        not event.stage_type and "canaryConfig" in context and "intervalStageId" in context)
    if event.level != "stage" or event.phase == "starting" or not is_kayenta:
        return None
    given = context.get("canaryScores")
    scores = [s for s in (given if isinstance(given, list) else []) if _is_score(s)]
    unreadable = given not in (None, []) and not scores
    if not scores:  # folded from the Run Canary stages when the aggregate did not run
        for child in _descendants(event, event.stage.get("id") or event.content.get("stageId")):
            score = _dict(child.get("context")).get("canaryScore")
            if child.get("type") == "runCanary" and _is_score(score):
                scores.append(score)
        unreadable = unreadable and not scores
    thresholds = _dict(_dict(context.get("canaryConfig")).get("scoreThresholds"))
    verdict = "pass" if event.status == "SUCCEEDED" else "fail" if event.status in FAILED else "inconclusive"
    if not scores and verdict != "fail":
        verdict = "inconclusive"
    found = {"verdict": verdict, "score": scores[-1] if scores else None, "scores": scores,
             "pass": thresholds.get("pass") if _is_score(thresholds.get("pass")) else None,
             "marginal": thresholds.get("marginal") if _is_score(thresholds.get("marginal")) else None,
             "message": str(context.get("canaryScoreMessage") or "")}
    if unreadable:
        found["unreadable"] = f"canaryScores {json.dumps(given)[:60]} is not a list of numbers"
    return found


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def note_id_for(event_id: str) -> str | None:
    """The note id an Echo ``eventId`` is stored under (the same for every resend), None without one."""
    if not event_id:
        return None
    return "spinnaker-" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def spinnaker_event_to_note(payload: Any, experiments: Iterable[ExperimentState] = (), *,
                            synthetic: bool = False) -> tuple[str | None, dict]:
    """``(experiment id or None, add_note arguments)`` for one Echo event (a body in any endpoint setting).

    The arguments are ``text``, ``note_kind`` (``surprise`` for a failure, else ``observation``),
    ``expected`` and ``actual`` (a failure's reason), ``tags`` (``spinnaker``, the application,
    the event type, the stage type, ``failed``/``canceled``/``canary``/``kayenta``...), ``note_id``
    (from ``eventId``), ``at`` (the event's own time or None) and for a Kayenta stage ``kayenta``
    (``kayenta_verdict``). The id is None when no experiment matches, or when the event is not
    recorded (then the arguments hold ``ignored``, the reason). ``synthetic`` records synthetic
    stages too. Raises ``NotSpinnakerEvent`` for a payload that is no Echo event.
    """
    event = payload if isinstance(payload, SpinnakerEvent) else parse_event(payload)
    if event.source and event.source.lower() != ORCA:
        return None, {"ignored": f"events from {event.source!r} are not recorded (Orca's pipeline and stage "
                                 "events are)"}
    if event.level == "other":
        return None, {"ignored": f"event type {event.kind!r} is not recorded (pipeline and stage events are)"}
    content, execution = event.content, event.execution
    pipeline = str(execution.get("name") or ("orchestration" if event.level == "orchestration" else "(unnamed)"))
    execution_id = str(content.get("executionId") or execution.get("id") or "unknown")
    status = event.status
    verb = _STATUS_WORDS.get(status, status.lower() or event.phase)
    reasons: list[str] = []
    context: dict = {}
    if event.level == "stage":
        context = _dict(content.get("context")) or _dict(event.stage.get("context"))
        stage_details = _dict(context.get("stageDetails"))
        stage_name = str(content.get("name") or event.stage.get("name") or stage_details.get("name")
                         or context.get("name") or "(unnamed)")
        of_type = f" ({event.stage_type})" if event.stage_type else ""
        text = f"Spinnaker pipeline '{pipeline}' stage '{stage_name}'{of_type} {verb} (execution {execution_id})"
        if status in FAILED | {"CANCELED"}:
            reasons = _stage_reasons(event, event.stage or {"id": content.get("stageId")}, context)
    else:
        if event.level == "orchestration":
            description = str(execution.get("description") or "").strip()
            what = f"'{description}'" if description else f"for application '{event.application or '?'}'"
            text = f"Spinnaker orchestration {what} {verb} (execution {execution_id})"
        else:
            text = f"Spinnaker pipeline '{pipeline}' {verb} (execution {execution_id})"
        if status in FAILED | {"CANCELED"}:
            for stage in execution.get("stages") or ():
                if isinstance(stage, dict) and str(stage.get("status") or "") in FAILED | {"CANCELED"} \
                        and not stage.get("syntheticStageOwner"):
                    for reason in _stage_reasons(event, stage, _dict(stage.get("context"))):
                        reasons.append(f"stage '{stage.get('name') or stage.get('type') or '?'}': {reason}")
    canceled = status == "CANCELED" or (execution.get("canceled") is True and event.phase != "starting"
                                        and status not in ("SUCCEEDED", "SKIPPED"))
    if canceled:
        who = str(execution.get("canceledBy") or "").strip()
        why = str(execution.get("cancellationReason") or "").strip()
        reasons.append("canceled" + (f" by {who}" if who else "") + (f": {why}" if why else ""))
    kayenta = kayenta_verdict(event)
    if kayenta is not None:
        score = ("score unreadable: " + kayenta["unreadable"] if kayenta.get("unreadable") else "no score") \
            if kayenta["score"] is None else f"score {_score_text(kayenta['score'])}"
        limits = ", ".join(f"{k} {_score_text(kayenta[k])}" for k in ("pass", "marginal") if kayenta[k] is not None)
        text += f"; Kayenta canary verdict {kayenta['verdict']}, {score}" + (f" (thresholds: {limits})" if limits else "")
    reasons = list(dict.fromkeys(reasons))
    failed = status in FAILED
    if reasons:
        text += ": " + "; ".join(reasons)
    tags = ["spinnaker"] + ([event.application] if event.application else []) + [event.kind]
    if event.stage_type:
        tags.append(event.stage_type)
    if failed:
        tags.append("failed")
    if status == "FAILED_CONTINUE":
        tags.append("failed-continue")
    if canceled:
        tags.append("canceled")
    if kayenta is not None:
        tags += ["canary", "kayenta", f"kayenta-{kayenta['verdict']}"]
    if event.synthetic:
        tags.append("synthetic")
    what = f"stage '{stage_name}'" if event.level == "stage" else f"{event.level} '{pipeline}'"
    note: dict[str, Any] = {"text": _cut(text, 4 * MAX_REASON_CHARS), "note_kind": "surprise" if failed else "observation",
            "expected": f"Spinnaker {what} succeeds" if failed else "",
            "actual": _cut("; ".join(reasons) or f"status {status}") if failed else "",
            "tags": list(dict.fromkeys(tags)), "note_id": note_id_for(event.event_id), "at": event.at}
    if kayenta is not None:
        note["kayenta"] = kayenta
    if event.synthetic and not synthetic:
        return None, {"ignored": f"synthetic stage '{stage_name}' is folded into its parent stage "
                                 "(add ?synthetic=record to the endpoint URL to record it)", **note}
    experiment_id = _parameter_experiment(execution, content) or _by_application(event.application, experiments,
                                                                                 event.at)
    if experiment_id is None:
        when = f" at {event.at.isoformat()}" if event.at else ""
        return None, {"ignored": f"no experiment matches (no experiment_id pipeline parameter, and no experiment "
                                 f"targeting service {event.application!r} was running{when})", **note}
    return experiment_id, note


def placement(state: ExperimentState, at: dt.datetime | None, arrived: dt.datetime) -> tuple[dt.datetime, float]:
    """``(time to record at, seconds late)``: the event's own time (not after its arrival), or,
    when the timeline already has a later event, that event's time and how much later it is."""
    when = min(at, arrived) if at is not None else arrived
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    if when < state.updated_at:
        return state.updated_at, (state.updated_at - when).total_seconds()
    return when, 0.0


#: The tag of an event that happened after its experiment ended (named by ``experiment_id``).
AFTER_RUN = "after-run"


def after_run(state: ExperimentState, happened: dt.datetime) -> float | None:
    """Seconds by which an event that ``happened`` after the experiment ended follows its end (None
    when it happened before, or the experiment has not ended)."""
    if state.ended_at is None or happened <= state.ended_at:
        return None
    return (happened - state.ended_at).total_seconds()


def add_spinnaker_routes(app, settings, json_response, store=None) -> None:
    """Register ``POST /v1/integrations/spinnaker`` on an aiohttp application.

    202 with the recorded events (and ``late`` when the event was placed after later ones), 200
    with ``{"ignored": reason}`` when nothing is recorded or ``{"duplicate": note id}`` for an event
    recorded before, 400 for a body that is not a Spinnaker event, 404/409 when the experiment
    refuses the note. With ``store``, a Kayenta stage's verdict is also a ``canary_verdicts`` row.
    """
    from aiohttp import web

    from hub.experiments.events import encode_event
    from hub.experiments.service import ExperimentService, UnknownExperiment, now

    service = ExperimentService(settings)
    lock = asyncio.Lock()

    def record(event: SpinnakerEvent, synthetic: bool) -> tuple[str | None, dict, list, dict]:
        states = service.states()
        experiment_id, note = spinnaker_event_to_note(event, states.values(), synthetic=synthetic)
        if experiment_id is None:
            return None, note, [], {}
        known = states.get(experiment_id)
        if known is not None and note["note_id"] and any(n.note_id == note["note_id"] for n in known.notes):
            return experiment_id, note, [], {"duplicate": note["note_id"]}  # Echo sent it again
        arrived = now()
        placed: dict = {}

        def decide(state: ExperimentState):
            at, late = placement(state, note["at"], arrived)
            text, tags = note["text"], note["tags"]
            happened = min(note["at"], arrived) if note["at"] is not None else arrived
            if late > 0:
                placed["late"] = {"happened_at": happened.isoformat(), "recorded_at": at.isoformat(),
                                  "seconds": round(late, 3)}
                text = f"{text} [late: happened at {happened.isoformat()}, {late:.3f}s before the event it follows]"
                tags = tags + ["late"]
            after = after_run(state, happened)
            if after is not None and state.ended_at is not None:  # (after_run is None without an end)
                placed["after_run"] = {"happened_at": happened.isoformat(), "ended_at": state.ended_at.isoformat(),
                                       "seconds": round(after, 3)}
                text = f"{text} [after the run: {after:.3f}s after the experiment ended at {state.ended_at.isoformat()}]"
                tags = tags + [AFTER_RUN]
            return lifecycle.add_note(state, text, ACTOR, at, note_kind=note["note_kind"], tags=tags,
                                      expected=note["expected"], actual=note["actual"], note_id=note["note_id"])

        events = service.command(experiment_id, decide)
        if events and store is not None and note.get("kayenta") and note["kayenta"]["score"] is not None:
            store_kayenta_verdict(store, experiment_id, note["kayenta"], events[0].time)
        return experiment_id, note, events, placed

    from kafka.errors import KafkaError, MessageSizeTooLargeError

    async def receive(request: web.Request) -> web.Response:
        from hub.api.server import BadBody, body_limits, check_texts, max_text_bytes, parse_json, read_json

        payload = await read_json(request, require_object=False)  # 400/413 for a body past the limits
        synthetic = request.query.get("synthetic", "") == "record"
        try:
            event = parse_event(payload, lambda text: parse_json(text, body_limits(request), "a flattened field"))
            _, note = spinnaker_event_to_note(event, synthetic=synthetic)  # shape check before touching the log
            if "text" in note:
                check_texts({"text": note["text"], "tags": note["tags"], "actual": note["actual"]},
                            max_text_bytes(request))
            async with lock:
                experiment_id, note, events, placed = await asyncio.get_running_loop().run_in_executor(
                    None, record, event, synthetic)
        except NotSpinnakerEvent as exc:
            return json_response({"error": str(exc)}, status=400)
        except UnknownExperiment as exc:
            return json_response({"error": str(exc)}, status=404)
        except UserError as exc:
            return json_response({"error": str(exc)}, status=409)
        except BadBody:
            raise
        except (KafkaError, HubError) as exc:
            if isinstance(exc, MessageSizeTooLargeError) or "MessageSizeTooLarge" in str(exc):
                raise BadBody("the note is larger than the experiment log accepts", 413) from None
            raise BadBody(f"the experiment log did not take the note: {type(exc).__name__}", 503) from None
        if experiment_id is None:
            return json_response({"ignored": note["ignored"]}, status=200)
        if "duplicate" in placed:
            return json_response({"experiment_id": experiment_id, "duplicate": placed["duplicate"]}, status=200)
        body = {"experiment_id": experiment_id, "text": events[0].text, "tags": list(events[0].tags),
                "events": [json.loads(encode_event(e)) for e in events]}
        for key in ("late", "after_run"):
            if key in placed:
                body[key] = placed[key]
        return json_response(body, status=202)

    app.router.add_post(ROUTE, receive)


def store_kayenta_verdict(store, experiment_id: str, kayenta: dict, judged_at: dt.datetime) -> None:
    """A Kayenta verdict as a ``canary_verdicts`` row beside the hub's own (metric ``kayenta_score``,
    route ``/``, effect ``kayenta_score`` = the final score, baseline value = the pass threshold)."""
    from hub.shadow.canary import Verdict, store_verdicts

    score = kayenta["score"] if kayenta["score"] is not None else float("nan")
    threshold = kayenta["pass"] if isinstance(kayenta["pass"], (int, float)) else float("nan")
    store_verdicts(store, [Verdict(
        experiment_id=experiment_id, route="/", metric="kayenta_score", verdict=kayenta["verdict"],
        confidence=float("nan"), p_value=float("nan"), effect_size=float(score), effect_kind="kayenta_score",
        canary_samples=len(kayenta["scores"]), baseline_samples=0, canary_value=float(score),
        baseline_value=float(threshold), canary_backend="kayenta", judged_at=judged_at)])
