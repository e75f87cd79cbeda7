"""The hub's HTTP endpoint, served by the worker that owns the store: health, status, metrics, SQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import hmac
import ipaddress
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import orjson
from aiohttp import web

from hub.metrics import CONTENT_TYPE, Families, exposition
from hub.records.decode import Limits, limits_from, too_deep
from hub.sql import QueryRefused, SqlLimits, run_readonly, sql_limits
from hub.sql.guard import MAX_CONCURRENT
from hub.storage.client import Store, first_line  # noqa: F401  (re-exported for the API modules)

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    store: Store
    token: str = ""
    is_ready: Callable[[], bool] = lambda: True
    #: ``{"status": "ok"|"degraded", "problems": [{"sink", "state", "partition", "error", "since"}]}``
    health: Callable[[], dict] = lambda: {"status": "ok", "problems": []}
    status: Callable[[], dict] = dict
    #: the current values, for ``GET /metrics`` (``hub.metrics``)
    metrics: Callable[[], Families] = Families
    max_rows: int = 100_000
    extra: dict = field(default_factory=dict)


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(type(value).__name__)


def json_response(payload: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json")


class BadBody(Exception):
    """A request body the route cannot take: answered with ``status`` and a one-line JSON error."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


LIMITS: web.AppKey = web.AppKey("hub_limits", Limits)
MAX_TEXT: web.AppKey = web.AppKey("hub_max_text_bytes", int)
DEFAULT_MAX_TEXT_BYTES = 65_536


def body_limits(request: web.Request) -> Limits:
    return request.config_dict.get(LIMITS) or Limits()


async def read_body(request: web.Request) -> bytes:
    """The raw body, refused with 413 when larger than ``HUB_MAX_RECORD_BYTES``."""
    limit = body_limits(request).max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BadBody(f"the body is {request.content_length} bytes, more than the limit of {limit} "
                      "(HUB_MAX_RECORD_BYTES)", 413)
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadBody(f"the body is larger than the limit of {limit} bytes (HUB_MAX_RECORD_BYTES)", 413) from None
    if len(data) > limit:
        raise BadBody(f"the body is {len(data)} bytes, more than the limit of {limit} (HUB_MAX_RECORD_BYTES)", 413)
    return data


async def read_text(request: web.Request) -> str:
    """The body as UTF-8 text, within the size limit; 400 when it is not UTF-8."""
    data = await read_body(request)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("the body is not UTF-8 text") from None


def parse_json(data: bytes | str, limits: Limits, what: str = "the body") -> Any:
    """JSON within the size and nesting limits (``HUB_MAX_RECORD_BYTES``, ``HUB_MAX_NESTING_DEPTH``);
    ``BadBody`` (400/413) for anything else, never another exception."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > limits.max_bytes:
        raise BadBody(f"{what} is {len(data)} bytes, more than the limit of {limits.max_bytes} "
                      "(HUB_MAX_RECORD_BYTES)", 413)
    if too_deep(data, limits.max_depth):
        raise BadBody(f"{what} is nested more than {limits.max_depth} levels deep (HUB_MAX_NESTING_DEPTH)")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadBody(f"{what} is not JSON: {first_line(exc)}") from None


async def read_json(request: web.Request, *, require_object: bool = True, empty: Any = None) -> Any:
    """The request's JSON body through the size and nesting limits; an empty body gives ``empty``."""
    data = await read_body(request)
    if not data.strip():
        if empty is not None:
            return empty
        raise BadBody("the body is empty; expected JSON")
    value = parse_json(data, body_limits(request))
    if require_object and not isinstance(value, dict):
        raise BadBody("the body must be a JSON object")
    return value


def check_texts(value: Any, limit: int, path: str = "") -> None:
    """413 when any string in ``value`` (a parsed JSON body) is longer than ``limit`` bytes (UTF-8)."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            size = len(item.encode("utf-8", "surrogatepass"))
            if size > limit:
                raise BadBody(f"{where or 'a text'} is {size} bytes, more than the limit of {limit} "
                              "(HUB_MAX_TEXT_BYTES)", 413)
        elif isinstance(item, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in item.items())
            stack.extend((where or "a key", k) for k in item)
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))


def max_text_bytes(request: web.Request) -> int:
    return request.config_dict.get(MAX_TEXT) or DEFAULT_MAX_TEXT_BYTES


def _special(value: float) -> str:
    return "nan" if value != value else "inf" if value > 0 else "-inf"


def mark_special_floats(value: Any) -> Any:
    """``value`` (a result row, or a cell) with each NaN and infinity, also inside arrays, tuples and
    maps, as the string ``"nan"``, ``"inf"`` or ``"-inf"``: JSON has no such numbers, and a null
    would read as SQL NULL."""
    if isinstance(value, float):
        return value if value - value == 0.0 else _special(value)
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, (float, list, tuple, dict)) for v in value):
            return value
        return [mark_special_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: mark_special_floats(v) for k, v in value.items()}
    return value


def run_sql(store: Store, sql: str, limits: SqlLimits) -> dict:
    """Run one read-only query (the guard and the engine's limits) and return columns and rows.

    It runs in a thread of its own on a connection of its own (never the sinks' one, never under
    the Store's lock), bounded by the limits of the hub's settings: rows, seconds and memory."""
    return run_readonly(store, sql, limits=limits)


# Ad-hoc queries run in threads of their own: a slow one never takes a thread of the event loop's
# default executor, which HTTP ingest and the experiment API use (at most MAX_CONCURRENT run at
# once, within their memory limits; the others wait their turn).
_SQL_THREADS = ThreadPoolExecutor(max_workers=2 * MAX_CONCURRENT, thread_name_prefix="sql")


def sql_limits_of(ctx: "ApiContext") -> SqlLimits:
    """The ad-hoc SQL limits of the hub's settings (environment and ``<home>/hub.env``)."""
    settings = ctx.extra.get("settings")
    if settings is not None:
        return sql_limits(settings)
    return replace(sql_limits(), max_rows=ctx.max_rows)


def build_app(ctx: ApiContext) -> web.Application:
    ingest_token = ctx.extra.get("ingest_token", "")

    @web.middleware
    async def errors(request: web.Request, handler):
        """Every answer of a failed request is one line of JSON; an unexpected error is one log line."""
        try:
            return await handler(request)
        except BadBody as exc:
            return json_response({"error": str(exc)}, status=exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            text = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
            return json_response({"error": first_line(Exception(text or exc.reason))}, status=exc.status)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - one line, never a traceback per request
            log.error("HTTP %s %s failed: %s: %s", request.method, request.path, type(exc).__name__,
                      first_line(exc))
            return json_response({"error": f"internal error ({type(exc).__name__}); the hub's log has the "
                                           "details"}, status=500)

    @web.middleware
    async def auth(request: web.Request, handler):
        if request.path in ("/health", "/ready"):
            return await handler(request)
        accepted = [t for t in (ctx.token, ingest_token if request.path == "/v1/events" else "") if t]
        if ctx.token or (ingest_token and request.path == "/v1/events"):
            given = request.headers.get("Authorization", "")
            if not any(hmac.compare_digest(given, f"Bearer {t}") for t in accepted):
                return json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    def current_health() -> dict:
        try:
            return ctx.health()
        except Exception as exc:  # noqa: BLE001 - a health check that fails says so
            return {"status": "degraded", "problems": [{"sink": None, "state": "unknown", "partition": None,
                                                        "error": f"health check failed: {first_line(exc)}",
                                                        "since": None}]}

    async def health(_: web.Request) -> web.Response:
        # Liveness: 200 whenever the process answers; the body says "degraded" with the problems
        # (a sink stalled, crashed or lagging). Readiness (/ready) fails on the same problems.
        return json_response(current_health())

    async def ready(_: web.Request) -> web.Response:
        state = current_health()
        ok = ctx.is_ready() and not state.get("problems")
        body: dict = {"ready": ok}
        if state.get("problems"):
            body["problems"] = state["problems"]
        return json_response(body, status=200 if ok else 503)

    async def status(_: web.Request) -> web.Response:
        return json_response(ctx.status())

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=exposition(ctx.metrics()), headers={"Content-Type": CONTENT_TYPE})

    async def sql(request: web.Request) -> web.Response:
        try:
            payload = await read_json(request)
            query = payload["query"]
        except (BadBody, KeyError) as exc:
            if isinstance(exc, BadBody) and exc.status == 413:
                raise
            return json_response({"error": 'expected a JSON body {"query": "..."}'}, status=400)
        if not isinstance(query, str) or not query.strip():
            return json_response({"error": "the query is empty"}, status=400)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(_SQL_THREADS, run_sql, ctx.store, query, sql_limits_of(ctx))
        except QueryRefused as exc:
            return json_response({"error": str(exc), "rule": exc.rule}, status=400)
        except Exception as exc:
            return json_response({"error": first_line(exc)}, status=400)
        result["rows"] = [mark_special_floats(row) for row in result["rows"]]
        return json_response(result)

    app = web.Application(middlewares=[errors, auth], client_max_size=8 * 1024 * 1024)
    settings = ctx.extra.get("settings")
    app[LIMITS] = limits_from(settings) if settings is not None else Limits()
    app[MAX_TEXT] = getattr(settings, "max_text_bytes", DEFAULT_MAX_TEXT_BYTES) or DEFAULT_MAX_TEXT_BYTES
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/sql", sql)
    from hub.api.canary import add_canary_routes

    add_canary_routes(app, ctx.store, json_response)
    if ctx.extra.get("settings") is not None:
        from hub.api.experiments import add_experiment_routes

        add_experiment_routes(app, ctx.extra["settings"], json_response, ctx.extra.get("judge"))
        from hub.api.ingest import add_ingest_routes
        from hub.integrations.spinnaker import add_spinnaker_routes

        add_spinnaker_routes(app, ctx.extra["settings"], json_response, store=ctx.store)

        add_ingest_routes(app, ctx.extra["settings"], json_response)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
