"""Spinnaker: a webhook receiver that turns Echo's pipeline and stage events into timeline notes on the experiment they touch.

Spinnaker's Echo service posts every event to a configured REST endpoint (``rest.endpoints`` in
``echo.yml``). Orca's events have ``details.type`` ``orca:pipeline:starting|complete|failed`` and
``orca:stage:starting|complete|failed|skipped`` (also ``orca:task:*`` and
``orca:orchestration:*``), ``details.application``, and ``content`` with ``execution`` (the
pipeline execution: ``id``, ``name``, ``application``, ``trigger.parameters`` ...), ``executionId``
and, for stages, ``name`` and ``context``.

Which experiment: the pipeline parameter ``experiment_id`` (or ``experiment``) of
``execution.trigger.parameters``, else the running (then ready) experiment whose definition lists
the event's application in ``targets.services`` (the most recently started one if several).
Task events and events of other sources are ignored (too fine-grained for a timeline).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any, Iterable

from hub.errors import HubError, UserError
from hub.experiments import lifecycle
from hub.experiments.lifecycle import ExperimentState

__all__ = ["NotSpinnakerEvent", "spinnaker_event_to_note", "add_spinnaker_routes", "ROUTE"]

ROUTE = "/v1/integrations/spinnaker"
ACTOR = "spinnaker"
_VERBS = {"starting": "started", "complete": "completed", "failed": "failed", "skipped": "was skipped"}
_PARAMETER_KEYS = ("experiment_id", "experiment")


class NotSpinnakerEvent(UserError):
    """A payload that is not a Spinnaker Echo event."""


def _execution(content: dict) -> dict:
    execution = content.get("execution")
    return execution if isinstance(execution, dict) else {}


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
    return None


def _by_application(application: str, experiments: Iterable[ExperimentState]) -> str | None:
    if not application:
        return None
    candidates = [s for s in experiments
                  if s.status in ("running", "ready") and application in s.definition.targets.services]
    if not candidates:
        return None
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    candidates.sort(key=lambda s: (s.status == "running", s.started_at or epoch, s.created_at))
    return candidates[-1].id


def event_time(payload: dict) -> dt.datetime | None:
    """When the event happened (stage end/start, else ``details.created``), or None."""
    content = payload.get("content") or {}
    details = payload.get("details") or {}
    kind = str(details.get("type", ""))
    candidates = [content.get("endTime"), content.get("startTime")] if not kind.endswith("starting") else [
        content.get("startTime")]
    candidates.append(details.get("created"))
    for value in candidates:
        try:
            ms = int(value)
        except (TypeError, ValueError):
            continue
        if ms > 0:
            return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    return None


def spinnaker_event_to_note(payload: Any, experiments: Iterable[ExperimentState] = ()) -> tuple[str | None, dict]:
    """``(experiment id or None, add_note arguments)`` for one Echo event.

    The arguments are ``text``, ``note_kind`` ("observation") and ``tags`` (``spinnaker``, the
    application, the event type). The id is None when no experiment matches, or when the event
    is of a kind that is not recorded (then the arguments hold ``ignored``, the reason).
    Raises ``NotSpinnakerEvent`` for a payload without ``details.type`` and ``content``.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("details"), dict) \
            or not isinstance(payload["details"].get("type"), str) or not isinstance(payload.get("content"), dict):
        raise NotSpinnakerEvent("not a Spinnaker event: expected an object with details.type and content")
    details, content = payload["details"], payload["content"]
    kind = details["type"]
    parts = kind.split(":")
    if len(parts) != 3 or parts[0] != "orca" or parts[1] not in ("pipeline", "stage", "orchestration"):
        return None, {"ignored": f"event type {kind!r} is not recorded (pipeline and stage events are)"}
    level, phase = parts[1], parts[2]
    execution = _execution(content)
    application = str(details.get("application") or execution.get("application") or "")
    experiment_id = _parameter_experiment(execution, content) or _by_application(application, experiments)
    pipeline = str(execution.get("name") or ("orchestration" if level == "orchestration" else "(unnamed)"))
    execution_id = str(content.get("executionId") or execution.get("id") or "unknown")
    verb = _VERBS.get(phase, phase)
    if level == "stage":
        context = content.get("context") if isinstance(content.get("context"), dict) else {}
        stage_details = context.get("stageDetails") if isinstance(context.get("stageDetails"), dict) else {}
        stage = str(content.get("name") or stage_details.get("name") or context.get("name") or "(unnamed)")
        text = f"Spinnaker pipeline '{pipeline}' stage '{stage}' {verb} (execution {execution_id})"
    elif level == "orchestration":
        text = f"Spinnaker orchestration {verb} for application '{application or '?'}' (execution {execution_id})"
    else:
        text = f"Spinnaker pipeline '{pipeline}' {verb} (execution {execution_id})"
    status = execution.get("status") if level != "stage" else None
    if isinstance(status, str) and status and phase != "starting":
        text += f", status {status}"
    tags = ["spinnaker"] + ([application] if application else []) + [kind]
    note = {"text": text, "note_kind": "observation", "tags": tags}
    if experiment_id is None:
        return None, {"ignored": f"no experiment matches (no experiment_id pipeline parameter, and no running "
                                 f"experiment targets service {application!r})", **note}
    return experiment_id, note


def add_spinnaker_routes(app, settings, json_response) -> None:
    """Register ``POST /v1/integrations/spinnaker`` on an aiohttp application.

    202 with the recorded events, 200 with ``{"ignored": reason}`` when nothing is recorded,
    400 for a body that is not a Spinnaker event, 404/409 when the experiment refuses the note.
    """
    from aiohttp import web

    from hub.experiments.events import encode_event
    from hub.experiments.service import ExperimentService, UnknownExperiment, now

    service = ExperimentService(settings)
    lock = asyncio.Lock()

    def record(payload: dict) -> tuple[str | None, dict, list]:
        experiment_id, note = spinnaker_event_to_note(payload, service.states().values())
        if experiment_id is None:
            return None, note, []
        at = event_time(payload)
        current = now()
        at = min(at, current) if at else current
        events = service.command(experiment_id, lambda state: lifecycle.add_note(
            state, note["text"], ACTOR, at, note_kind=note["note_kind"], tags=note["tags"]))
        return experiment_id, note, events

    from kafka.errors import KafkaError, MessageSizeTooLargeError

    async def receive(request: web.Request) -> web.Response:
        from hub.api.server import BadBody, check_texts, max_text_bytes, read_json

        payload = await read_json(request, require_object=False)  # 400/413 for a body past the limits
        try:
            _, note = spinnaker_event_to_note(payload)  # shape check before touching the log
            if "text" in note:
                check_texts({"text": note["text"], "tags": note["tags"]}, max_text_bytes(request))
            async with lock:
                experiment_id, note, events = await asyncio.get_running_loop().run_in_executor(None, record, payload)
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
        return json_response({"experiment_id": experiment_id, "text": note["text"], "tags": note["tags"],
                              "events": [json.loads(encode_event(e)) for e in events]}, status=202)

    app.router.add_post(ROUTE, receive)
