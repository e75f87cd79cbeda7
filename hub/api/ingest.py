"""CloudEvents over HTTP into the hub's topics: structured and binary content modes, single and batch.

``POST /v1/events`` accepts

- structured mode: ``Content-Type: application/cloudevents+json``, one event as JSON;
- batch mode: ``Content-Type: application/cloudevents-batch+json``, a JSON array of events;
- binary mode: the event's attributes as ``ce-*`` headers and its ``data`` as the body
  (``Content-Type: application/json``).

Every event is validated as the worker would validate it; valid ones are written to the topic of
their type (keyed by correlation id), the others are refused with their reason. The answer says
which: ``{"accepted": N, "refused": [{"index": i, "id": ..., "reason": ...}]}``, status 202 when
all were accepted, 207 when some were refused, 400 when none was. A request body over
8 MiB (8,388,608 bytes: the largest request body of the hub's HTTP server, its ``client_max_size``),
declared in Content-Length or sent in chunks, is refused whole with 413 and a JSON error. The worker's limits apply
(``HUB_MAX_RECORD_BYTES``, ``HUB_MAX_NESTING_DEPTH``, the event-time window): an event nested too
deeply is refused with ``too deeply nested: > N levels`` (a batch nested so deeply that it cannot be
split into events is refused as a whole), and no body makes the endpoint fail with a 500.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
from aiohttp import web

from hub.records.decode import RawMessage, decode_request_legs, depth_reason, limits_from, too_deep
from hub.records.request_leg import REQ_CORRELATION_ID
from hub.settings import Settings

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
# CloudEvents HTTP binding: context attributes travel as ce-<name> headers in binary mode.
_PREFIX = "ce-"


def binary_event(headers, body: bytes, content_type: str, max_depth: int = 64) -> bytes:
    """A structured-mode event from a binary-mode request (headers + data); ValueError if unusable.

    Every ``ce-<name>`` header becomes the attribute ``<name>`` (lower case), so an attribute the
    hub does not know (``ce-bogus``) is refused exactly as the same attribute in structured mode
    is (``schema: Object contains unknown field ...``), not dropped."""
    if too_deep(body, max_depth - 1):  # the data sits one level down in the event
        raise ValueError(depth_reason(max_depth))
    event: dict[str, Any] = {}
    for header, value in headers.items():
        if header.lower().startswith(_PREFIX):
            name = header[len(_PREFIX):].lower()
            if name in ("data", "datacontenttype"):
                raise ValueError(f"schema: {header} is not a context attribute in binary mode: the body is "
                                 "the data and Content-Type its content type")
            if name in event:
                raise ValueError(f"schema: the attribute {name} is sent twice (ce-{name} headers)")
            event[name] = value
    event["datacontenttype"] = content_type or "application/json"
    try:
        event["data"] = json.loads(body) if body else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: the body of a binary-mode event must be JSON data ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8 (UnicodeDecodeError), ...
        raise ValueError(f"not JSON: the body of a binary-mode event must be JSON data ({exc})") from None
    return json.dumps(event).encode()


def split_events(content_type: str, headers, body: bytes, max_depth: int = 64) -> list[bytes]:
    """The events of a request, each as structured-mode JSON bytes; ValueError if unreadable.

    Each event is checked against the limits later (``decode_request_legs``); here only a batch
    too deep to be split at all, or a binary-mode body nested deeper than ``max_depth``, is refused.
    """
    if content_type == BATCH:
        try:
            elements = msgspec.json.decode(body, type=list[msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"not a JSON array of events: {exc}") from None
        except RecursionError:
            raise ValueError(depth_reason(max_depth)) from None
        return [bytes(e) for e in elements]
    if content_type == STRUCTURED:
        return [body]
    if headers.get("ce-specversion") is not None:
        return [binary_event(headers, body, content_type, max_depth)]
    raise ValueError(f"unsupported content type {content_type or 'none'!r}: send {STRUCTURED}, {BATCH}, "
                     "or a binary-mode event with ce-* headers")


class _Id(msgspec.Struct):
    id: object = None


def _event_id(value: bytes):
    """The ``id`` of a refused event when it has a readable one, else None."""
    try:  # msgspec stops at the interpreter's recursion limit with a RecursionError
        found = msgspec.json.decode(value, type=_Id).id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return found if isinstance(found, (str, int, float, bool)) else None


def add_ingest_routes(app: web.Application, settings: Settings, json_response) -> None:
    producer_holder: dict = {}
    limits = limits_from(settings)

    def producer():
        if "p" not in producer_holder:
            from hub.runtime import clients

            producer_holder["p"] = clients.producer(settings.bootstrap, settings=settings, acks="all",
                                                    linger_ms=5, retries=5)
        return producer_holder["p"]

    def redactor():
        from hub.pipeline import redactor_for  # the worker's redactor: the same policy and key

        return redactor_for(settings)

    def publish(accepted: list[tuple[bytes, bytes]]) -> None:
        p = producer()
        futures = [p.send(settings.topic_requests, key=k, value=v) for k, v in accepted]
        p.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)

    async def ingest(request: web.Request) -> web.Response:
        # One limit for every request, whether its length is declared or it is sent in chunks: the
        # server's largest request body (client_max_size), which reading enforces for chunked ones.
        limit = request.client_max_size
        too_large = json_response({"error": f"request body over {limit} bytes, the largest POST /v1/events "
                                            "takes: send the events in several requests"}, status=413)
        if request.content_length is not None and request.content_length > limit:
            return too_large
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return too_large
        try:
            raw_events = split_events(request.content_type, request.headers, body, limits.max_depth)
        except ValueError as exc:
            return json_response({"accepted": 0, "refused": [{"index": -1, "reason": redactor().text(str(exc), "api")}]},
                                 status=400)
        not_objects = {i for i, value in enumerate(raw_events) if value.lstrip()[:1] != b"{"}
        messages = [RawMessage("http", 0, i, None, value, 0) for i, value in enumerate(raw_events)
                    if i not in not_objects]
        decoded = decode_request_legs(messages, settings.max_record_bytes, limits)
        refused: list[dict[str, Any]] = [{"index": i, "reason": "not an event: each event must be a JSON object"}
                   for i in sorted(not_objects)]
        refused += [{"index": bad.offset, "reason": bad.reason} for bad in decoded.invalid]
        refused.sort(key=lambda item: item["index"])
        bad_indexes = {item["index"] for item in refused}
        good = [raw_events[i] for i in range(len(raw_events)) if i not in bad_indexes]
        accepted = [(row[REQ_CORRELATION_ID].encode(), value) for row, value in zip(decoded.rows, good)]
        # a refusal echoes the offending value: its reason and id are redacted as a dead letter's are
        clean = redactor()
        for item in refused:
            item["reason"] = clean.text(item["reason"], "api")
            found = _event_id(raw_events[item["index"]])
            item["id"] = clean.key(found.encode(), "api").decode() if isinstance(found, str) and found else found
        if accepted:
            try:
                await asyncio.get_running_loop().run_in_executor(None, publish, accepted)
            except Exception as exc:
                return json_response({"error": f"the broker did not take the events: {exc}"}, status=503)
        status = 202 if not refused else (207 if accepted else 400)
        return json_response({"accepted": len(accepted), "refused": refused}, status=status)

    app.router.add_post("/v1/events", ingest)
