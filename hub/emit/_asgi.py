"""``RequestLegMiddleware``: one request-leg record per HTTP request an ASGI app serves.

Wrap any ASGI application (Starlette, FastAPI, Django's ASGI handler, a raw ASGI callable)::

    app = RequestLegMiddleware(app, emitter, gateway="edge-eu-1", backend="patients")

The middleware measures the request around the application call and hands one ``RequestLeg`` to
``emitter.emit_leg``, which only appends to a bounded buffer. Nothing the emitter does (or fails
to do) reaches the request: building the record is guarded, and the app's exceptions are re-raised
unchanged after their record (status 500, the error text) is emitted.

Privacy: the route is a template (``route_of(scope)``, else the matched Starlette/FastAPI route,
else the path); query strings are never recorded, since they may carry patient data. Paths with
identifiers in them are recorded as they are, so give ``route_of`` (or use a router) when paths
carry personal data.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Final, MutableMapping
from urllib.parse import quote, unquote

from hub.names import ATTR_EXPERIMENT_ID, ATTR_EXPERIMENT_PHASE, LEGS
from hub.records.request_leg import Leg, RequestLeg

__all__ = [
    "RequestLegMiddleware",
    "HEADER_CORRELATION_ID",
    "HEADER_EXPERIMENT_ID",
    "HEADER_EXPERIMENT_PHASE",
    "parse_baggage",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UTC: Final = timezone.utc
#: Request header carrying the id shared by all legs of one request (added to the response when new).
HEADER_CORRELATION_ID: Final = "x-correlation-id"
#: Request headers naming the experiment and its phase (else the ``baggage`` entries
#: ``experiment.id`` / ``experiment.phase``, ``hub.names.ATTR_EXPERIMENT_*``).
HEADER_EXPERIMENT_ID: Final = "x-experiment-id"
HEADER_EXPERIMENT_PHASE: Final = "x-experiment-phase"

_MAX_ID: Final = 200
_MAX_ERROR: Final = 500
_METHOD: Final = re.compile(r"[A-Z]{1,20}")
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~{}"


def parse_baggage(value: str) -> dict[str, str]:
    """W3C baggage (``k1=v1;prop,k2=v2``) as a dict of percent-decoded values."""
    entries: dict[str, str] = {}
    for member in value.split(","):
        pair = member.split(";", 1)[0]
        name, sep, val = pair.partition("=")
        if sep:
            name = name.strip()
            if name:
                entries[name] = unquote(val.strip())
    return entries


def _route_text(path: str) -> str:
    """A path or template that satisfies the record's route pattern: no query, no whitespace."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    path = quote(path, safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    return path[:2000]


def _starlette_route(scope: Scope) -> str | None:
    """The template of the route a Starlette/FastAPI router matched, if any."""
    route = scope.get("route")  # FastAPI (and recent Starlette) put the matched route here
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str) and template.startswith("/"):
        return template
    router = scope.get("router")  # Starlette's Router puts itself here
    for candidate in getattr(router, "routes", None) or ():
        matches = getattr(candidate, "matches", None)
        if matches is None:
            continue
        match, _ = matches(scope)
        if getattr(match, "name", "") == "FULL":
            if getattr(candidate, "routes", None):
                return None  # a Mount: its own path is only a prefix; fall back to the path
            template = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
            if isinstance(template, str) and template.startswith("/"):
                return template
            return None
    return None


class RequestLegMiddleware:
    """ASGI middleware emitting one ``RequestLeg`` per HTTP request (other scopes pass through).

    ``gateway``, ``backend`` and ``leg`` name where this leg runs; ``route_of(scope)`` may return
    the route template (or None to fall back). ``sink(leg, envelope)`` replaces
    ``emitter.emit_leg(leg, **envelope)`` when given (for tests and custom transports).
    ``error_detail=False`` records only the exception's class name, not its message.
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        emitter: Any = None,
        *,
        gateway: str,
        backend: str,
        leg: Leg = "primary",
        route_of: Callable[[Scope], str | None] | None = None,
        sink: Callable[[RequestLeg, dict[str, Any]], Any] | None = None,
        source: str | None = None,
        hash_body: bool = True,
        error_detail: bool = True,
    ):
        if emitter is None and sink is None:
            raise ValueError("give an emitter (or a sink)")
        if leg not in LEGS:
            raise ValueError(f"leg must be one of {', '.join(LEGS)}, not {leg!r}")
        if not gateway or not backend:
            raise ValueError("gateway and backend must not be empty")
        self.app = app
        self.emitter = emitter
        self.gateway = gateway
        self.backend = backend
        self.leg = leg
        self.route_of = route_of
        if sink is None:
            emit_leg = emitter.emit_leg

            def sink(leg: RequestLeg, envelope: dict[str, Any]) -> Any:
                return emit_leg(leg, **envelope)
        self.sink = sink
        self.source = source or "/gateways/" + quote(gateway, safe="-._~")
        self.hash_body = hash_body
        self.error_detail = error_detail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            correlation_id, generated, experiment_id, phase = self._read_headers(scope)
            if generated:
                scope = dict(scope)
                scope["headers"] = [*scope.get("headers", ()),
                                    (HEADER_CORRELATION_ID.encode(), correlation_id.encode())]
        except Exception:
            correlation_id, generated, experiment_id, phase = str(uuid.uuid4()), False, "", ""

        request_bytes = 0
        response_bytes = 0
        status: int | None = None
        responded = False
        digest = hashlib.sha256() if self.hash_body else None

        async def counting_receive() -> Message:
            nonlocal request_bytes
            message = await receive()
            if message.get("type") == "http.request":
                request_bytes += len(message.get("body") or b"")
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, response_bytes, responded
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 0))
                responded = True
                if generated:
                    headers = list(message.get("headers") or ())
                    if not any(k.lower() == b"x-correlation-id" for k, _ in headers):
                        headers.append((b"x-correlation-id", correlation_id.encode()))
                        message = {**message, "headers": headers}
            elif kind == "http.response.body":
                body = message.get("body") or b""
                response_bytes += len(body)
                if digest is not None and body:
                    digest.update(body)
            await send(message)

        error = ""
        try:
            await self.app(scope, counting_receive, observing_send)
        except BaseException as exc:
            error = type(exc).__name__
            if self.error_detail and str(exc):
                error = f"{error}: {exc}"
            status = 500
            raise
        finally:
            latency_ms = (time.perf_counter() - t0) * 1000.0
            try:
                if status is None:
                    status, error = 500, error or "the application sent no response"
                self._emit(scope, correlation_id, experiment_id, phase, started_at, latency_ms,
                           status, request_bytes, response_bytes,
                           digest.digest()[:16].hex() if digest is not None and responded else "",
                           error[:_MAX_ERROR])
            except Exception:
                pass  # telemetry never fails the request

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _read_headers(scope: Scope) -> tuple[str, bool, str, str]:
        correlation_id = experiment_id = phase = baggage = ""
        for raw_name, raw_value in scope.get("headers") or ():
            name = raw_name.decode("latin-1").lower()
            if name == HEADER_CORRELATION_ID:
                correlation_id = raw_value.decode("latin-1").strip()[:_MAX_ID]
            elif name == HEADER_EXPERIMENT_ID:
                experiment_id = raw_value.decode("latin-1").strip()[:_MAX_ID]
            elif name == HEADER_EXPERIMENT_PHASE:
                phase = raw_value.decode("latin-1").strip()[:_MAX_ID]
            elif name == "baggage":
                baggage = f"{baggage},{raw_value.decode('latin-1')}" if baggage else raw_value.decode("latin-1")
        if baggage and not (experiment_id and phase):
            entries = parse_baggage(baggage)
            experiment_id = experiment_id or entries.get(ATTR_EXPERIMENT_ID, "")[:_MAX_ID]
            phase = phase or entries.get(ATTR_EXPERIMENT_PHASE, "")[:_MAX_ID]
        generated = not correlation_id
        if generated:
            correlation_id = str(uuid.uuid4())
        return correlation_id, generated, experiment_id, phase

    def _route(self, scope: Scope) -> str:
        template = None
        if self.route_of is not None:
            try:
                template = self.route_of(scope)
            except Exception:
                template = None
        if not template:
            try:
                template = _starlette_route(scope)
            except Exception:
                template = None
        if not template:
            template = scope.get("path") or "/"
        return _route_text(template)

    def _emit(self, scope, correlation_id, experiment_id, phase, started_at, latency_ms, status,
              request_bytes, response_bytes, response_hash, error) -> None:
        method = str(scope.get("method") or "").upper()
        if not _METHOD.fullmatch(method):
            method = "OTHER"
        leg = RequestLeg(
            correlation_id=correlation_id,
            leg=self.leg,
            gateway=self.gateway,
            route=self._route(scope),
            method=method,
            backend=self.backend,
            status=min(max(int(status), 0), 599),
            latency_ms=round(latency_ms, 3),
            event_time=started_at,
            request_bytes=min(request_bytes, 4294967295),
            response_bytes=min(response_bytes, 4294967295),
            response_hash=response_hash,
            error=error,
            experiment_id=experiment_id,
            phase=phase,
        )
        envelope: dict[str, Any] = {"source": self.source}
        if experiment_id:
            envelope["experimentid"] = experiment_id
        if phase:
            envelope["experimentphase"] = phase
        self.sink(leg, envelope)
