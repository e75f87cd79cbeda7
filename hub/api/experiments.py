"""HTTP routes for experiment commands and reads; the same lifecycle as the CLI (``hub.experiments.service``).

POST /v1/experiments                       create (body: the definition as YAML or JSON)
POST /v1/experiments/{id}/prerequisites    {"done": [items], "all_done": bool, "note": str}
POST /v1/experiments/{id}/start            {"force": bool}
POST /v1/experiments/{id}/phase            {"phase": str}
POST /v1/experiments/{id}/faults           {"action", "target", "parameters", "injector", "fault_id"}
POST /v1/experiments/{id}/faults/{fault}/remove
POST /v1/experiments/{id}/notes            {"text", "kind": observation|surprise, "expected", "actual", "tags"}
POST /v1/experiments/{id}/abort            {"reason"}
POST /v1/experiments/{id}/complete         {"summary", "force"}
GET  /v1/experiments, /v1/experiments/{id}, /v1/experiments/{id}/history

Every command takes the acting person from the ``X-Hub-Actor`` header or the body's ``actor``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from aiohttp import web
from kafka.errors import KafkaError, MessageSizeTooLargeError

from hub.api.server import (BadBody, body_limits, check_texts, first_line, max_text_bytes, parse_json, read_json,
                            read_text)
from hub.errors import HubError, UserError
from hub.experiments import lifecycle
from hub.experiments.definition import definition_from_dict, parse_definition
from hub.experiments.events import encode_event
from hub.experiments.service import ExperimentService, UnknownExperiment, now, summarize


def body_time(data: dict) -> dt.datetime | None:
    """A command body's ``at``: when it happened, if not now (ISO 8601, UTC without an offset)."""
    raw = data.get("at")
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(f"at: expected an ISO 8601 time such as 2026-12-07T14:03:05Z, not {str(raw)[:60]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def add_experiment_routes(app: web.Application, settings, json_response, judge=None) -> None:
    service = ExperimentService(settings)
    lock = asyncio.Lock()  # one command at a time: read the timeline, decide, append

    async def blocking(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def error(exc: Exception) -> web.Response:
        status = 404 if isinstance(exc, UnknownExperiment) else 409 if isinstance(exc, lifecycle.InvalidTransition) else 400
        return json_response({"error": str(exc)}, status=status)

    async def body(request: web.Request) -> dict:
        if not request.can_read_body:
            return {}
        data = await read_json(request, empty={})
        check_texts(data, max_text_bytes(request))
        return data

    def log_error(exc: Exception) -> BadBody:
        if isinstance(exc, MessageSizeTooLargeError) or "MessageSizeTooLarge" in str(exc):
            return BadBody("the experiment event is larger than the experiment log accepts; shorten its texts", 413)
        return BadBody(f"the experiment log did not take the event: {first_line(exc)}", 503)

    def actor_of(request: web.Request, data: dict) -> str:
        return request.headers.get("X-Hub-Actor") or data.get("actor") or "api"

    def events_json(events) -> list:
        return [json.loads(encode_event(e)) for e in events]

    async def create(request: web.Request) -> web.Response:
        text = await read_text(request)
        try:
            if request.content_type == "application/json":
                definition = definition_from_dict(parse_json(text, body_limits(request)), "request body")
            else:
                definition = parse_definition(text, "request body", max_depth=body_limits(request).max_depth)
            async with lock:
                event = await blocking(service.create, definition, request.headers.get("X-Hub-Actor") or "api")
        except UserError as exc:
            return error(exc)
        except (KafkaError, HubError) as exc:
            raise log_error(exc) from None
        return json_response({"events": events_json([event])}, status=201)

    def command(decide):
        async def handler(request: web.Request) -> web.Response:
            try:
                data = await body(request)
                actor = actor_of(request, data)
                experiment_id = request.match_info["id"]
                async with lock:
                    events = await blocking(service.command, experiment_id,
                                            lambda state: decide(state, data, actor, request.match_info))
            except UserError as exc:
                return error(exc)
            except (KafkaError, HubError) as exc:
                raise log_error(exc) from None
            return json_response({"events": events_json(events)}, status=201)
        return handler

    def prerequisites(state, data, actor, _):
        items = [p.item for p in state.definition.prerequisites]
        done = set(data.get("done") or [])
        unknown = sorted(done - set(items))
        if unknown:
            raise UserError(f"unknown prerequisite {unknown[0]!r}")
        results = [{"item": i, "done": bool(data.get("all_done")) or i in done, "note": data.get("note", "")}
                   for i in items]
        return lifecycle.check_prerequisites(state, results, actor, now())

    async def list_all(_: web.Request) -> web.Response:
        states = await blocking(service.states)
        return json_response([summarize(s) for s in sorted(states.values(), key=lambda s: s.created_at)])

    async def show(request: web.Request) -> web.Response:
        try:
            state = await blocking(service.get, request.match_info["id"])
        except UserError as exc:
            return error(exc)
        return json_response(summarize(state))

    async def history(request: web.Request) -> web.Response:
        try:
            events = await blocking(service.history, request.match_info["id"])
        except UserError as exc:
            return error(exc)
        return json_response(events_json(events))

    async def rules(request: web.Request) -> web.Response:
        experiment_id = request.match_info["id"]
        experiment = judge.judge.experiments.get(experiment_id) if judge is not None else None
        if experiment is None:
            try:
                state = await blocking(service.get, experiment_id)
            except UserError as exc:
                return error(exc)
            return json_response([{"rule": c.name, "measurement": c.measurement, "comparison": c.comparison,
                                   "threshold": c.threshold, "window": c.window, "severity": c.severity,
                                   "value": None, "samples": 0, "firing": False, "breaching_since": None,
                                   "evaluated_at": None, "detail": "no data yet"}
                                  for c in state.definition.abort_conditions])
        return json_response(experiment.view())

    r = app.router
    r.add_get("/v1/experiments/{id}/rules", rules)
    r.add_post("/v1/experiments", create)
    r.add_get("/v1/experiments", list_all)
    r.add_get("/v1/experiments/{id}", show)
    r.add_get("/v1/experiments/{id}/history", history)
    r.add_post("/v1/experiments/{id}/prerequisites", command(prerequisites))
    r.add_post("/v1/experiments/{id}/start", command(
        lambda s, d, a, _: lifecycle.start(s, a, now(), force=bool(d.get("force")))))
    r.add_post("/v1/experiments/{id}/phase", command(
        lambda s, d, a, _: lifecycle.change_phase(s, str(d.get("phase", "")), a, now())))
    r.add_post("/v1/experiments/{id}/faults", command(
        lambda s, d, a, _: lifecycle.inject_fault(
            s, str(d.get("action", "")), str(d.get("target", "")), a, lifecycle.stated_time(s, body_time(d), now()),
            parameters=d.get("parameters") or {}, injector=d.get("injector"), fault_id=d.get("fault_id"))))
    r.add_post("/v1/experiments/{id}/faults/{fault}/remove", command(
        lambda s, d, a, m: lifecycle.remove_fault(s, m["fault"], a, lifecycle.stated_time(s, body_time(d), now()))))
    r.add_post("/v1/experiments/{id}/notes", command(
        lambda s, d, a, _: lifecycle.add_note(
            s, str(d.get("text", "")), a, now(), note_kind=d.get("kind", "observation"),
            expected=d.get("expected", ""), actual=d.get("actual", ""), tags=d.get("tags") or ())))
    r.add_post("/v1/experiments/{id}/abort", command(
        lambda s, d, a, _: lifecycle.abort(s, str(d.get("reason", "")), a, now())))
    r.add_post("/v1/experiments/{id}/complete", command(
        lambda s, d, a, _: lifecycle.complete(s, a, now(), str(d.get("summary", "")), force=bool(d.get("force")))))
