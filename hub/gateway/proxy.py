"""The gateway: its own HTTP/1.1 server (``hub.gateway.server``) forwarding to backends through
its own HTTP/1.1 client (``hub.gateway.client``: one keep-alive connection pool per backend, never re-sending).

Per request: normalise the path (``hub.gateway.paths``: the path routed is the path forwarded),
match the route (first match; 404 when none, 405 when the method is not allowed), make the
correlation id (an upstream gateway's when trusted, see ``hub.gateway.headers``), pick the target
(the canary backend for the canary's share, sticky by a header or cookie when configured),
forward with the bodies streaming through (never re-sent, never re-normalised), emit the leg
(``primary`` or ``canary``). When the route shadows and the request is safe to replay (a safe
method, no body, no method override), a per-route counter selects exactly ``percent`` % of those
requests (over any n requests, floor(n * percent / 100) of them); a selected request is handed to
the bulkhead of its shadow backend (``bulkhead.scope``: one per shadow backend, per route, or one
for the gateway), which replays it to the shadow backend (and to the secondary, when configured) in
the background, so a shadow that hangs fills only its own bulkhead. A full bulkhead drops it:
counted, emitted as a shadow leg with status 0 and error ``dropped by bulkhead``, and as a pair
with outcome ``dropped_by_bulkhead``.

The gateway holds every response of a shadowed request, so it compares bodies itself (JSON
field by field), feeds the noise model with the primary-vs-secondary differences, and emits
the pair (``dev.gamedayhub.shadow.pair.v1``) to the pairs topic. Its legs carry the envelope
source ``/hub-gateway/<name>``, which tells the stream pairing agent not to pair them again.
The secondary's leg is emitted as a ``shadow`` leg whose backend is the secondary's name.

Chaining: a backend of kind ``gateway`` is another gateway; the correlation id and experiment
headers travel on, so the next gateway's legs share the id (legs are paired per gateway). Every
forwarded request carries ``X-Hub-Via``, the gateways it went through so far (``A,B``); a gateway
reached through others emits its legs with the source ``/hub-gateway/A/B`` (the chain, itself
last), so the stored legs show the path, and refuses a request that already went through it
(508 Loop Detected) instead of forwarding it round a loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import signal
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, cast

from aiohttp import web
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.propagate import inject

from hub.gateway.bulkhead import Bulkheads
from hub.gateway.client import BrokenBody, ConnectFailed, Disconnected, Malformed, Pool, PoolFull
from hub.gateway.compare import decode_body
from hub.gateway.config import SHADOWABLE, Backend, GatewayConfig, Route
from hub.gateway.headers import (
    FORWARDING, HEADER_CID, HEADER_CLIENT_CID, HEADER_EXP, HEADER_PHASE, HEADER_SECRET, HEADER_SHADOW, HEADER_VIA,
    OWN, Trust, end_to_end, forwarding, overrides_method, valid_correlation_id, valid_host)
from hub.gateway.paths import BadTarget, normalize_target
from hub.gateway.server import SERVER_NAME, Answer, Exchange
from hub.gateway.server import Server as ProtocolServer
from hub.metrics import CONTENT_TYPE, Families, exposition
from hub.names import ATTR_CORRELATION_ID, ATTR_EXPERIMENT_ID, ATTR_GATEWAY_LEG
from hub.records.request_leg import RequestLeg
from hub.shadow.noise import WHOLE_BODY, NoiseModel, body_diff, clean_comparison
from hub.shadow.pairing import DROPPED_BY_BULKHEAD, GATEWAY_SOURCE_PREFIX, LegView, PairPolicy, make_pair
from hub.shadow.records import ShadowPair, encode_pair

log = logging.getLogger(__name__)
UTC = timezone.utc

ATTR_CHAIN = "gateway.chain"
ATTR_CLIENT_CID = "gateway.client_correlation_id"
MAX_HOPS = 16
_GATEWAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # as gateway.name in the configuration
_SAFE = frozenset(SHADOWABLE)
_CHUNK = 64 * 1024
# besides hop-by-hop headers: the gateway's own, the forwarding ones (rebuilt), and Expect (the
# gateway answers 100-continue itself and streams the body on)
_NOT_FORWARDED = OWN | FORWARDING | frozenset({"expect"})
# The emitters' batching: the Kafka client's work (building, compressing and sending a produce
# request, handling its acknowledgement) is paid per Kafka record, in this process, beside the
# request path; a longer linger and larger batches make it a small share per leg. Legs reach
# Kafka at most EMIT_LINGER_S later, and every one is sent when the gateway stops.
EMIT_LINGER_S = 0.25
EMIT_BATCH_EVENTS = 1000
# An emitter that cannot deliver (not connected to Kafka for EMIT_GRACE_S, or dropping events
# within the last EMIT_DROP_WINDOW_S) makes /health say "degraded" with the reason, and one warning
# is logged when that starts; the emitters are looked at every EMIT_CHECK_S.
EMIT_GRACE_S = 5.0
EMIT_DROP_WINDOW_S = 30.0
EMIT_CHECK_S = 1.0


def response_hash(body: bytes) -> str:
    """sha256 of the body, first 16 bytes in hex (as ``RequestLegMiddleware``)."""
    return hashlib.sha256(body).digest()[:16].hex()


class ExactShare:
    """Selects exactly floor(n * percent / 100) of any first n calls, spread evenly."""

    def __init__(self, percent: float):
        self.k = round(percent * 100)  # basis points
        self.n = 0

    def take(self) -> bool:
        n = self.n
        self.n = n + 1
        return (n + 1) * self.k // 10000 > n * self.k // 10000


def parse_via(value: str) -> tuple[str, ...]:
    """The gateways a request came through (``X-Hub-Via: A,B``); () when absent or not well formed."""
    if not value:
        return ()
    names = tuple(v.strip() for v in value.split(","))
    if not all(_GATEWAY_NAME.match(n) for n in names):
        log.debug("ignoring a malformed %s header: %r", HEADER_VIA, value[:200])
        return ()
    return names


_random_bits = random.SystemRandom().getrandbits(64)  # noqa: S311 (a seed, not a secret)
_rng = random.Random(_random_bits ^ time.time_ns())


def _new_correlation_id() -> str:
    """128 random bits in hex, like ``uuid.uuid4().hex`` but without a system call per request."""
    return f"{_rng.getrandbits(128):032x}"


def sticky_bucket(value: str) -> float:
    """A stable number in [0, 1) for a sticky key (crc32; the same in every gateway process)."""
    return zlib.crc32(value.encode()) / 2**32


class _Body:
    """A body passing through: its size, its hash, and its first ``cap`` bytes (None once larger)."""

    __slots__ = ("size", "hash", "buf", "cap")

    def __init__(self, cap: int):
        self.size = 0
        self.hash = hashlib.sha256()
        self.cap = cap
        self.buf: bytearray | None = bytearray() if cap > 0 else None

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.hash.update(chunk)
        if self.buf is not None:
            if len(self.buf) + len(chunk) <= self.cap:
                self.buf += chunk
            else:
                self.buf = None


@dataclass
class _Response:
    status: int
    latency_ms: float
    error: str = ""
    size: int = 0
    digest: str = ""               # response_hash of the whole body ("" without a response)
    body: bytes | None = None      # the body for comparison: up to compare_max_bytes, else None
    encoding: str = ""             # its Content-Encoding
    timed_out: bool = False

    @classmethod
    def of(cls, status: int, body: _Body, latency_ms: float, encoding: str = "", error: str = "") -> "_Response":
        return cls(status, latency_ms, error, body.size, body.hash.digest()[:16].hex(),
                   bytes(body.buf) if body.buf is not None else None, encoding)


def describe(exc: BaseException, backend: Backend) -> str:
    """A backend error as stored in a leg: its kind and the backend's name, never the URL or path."""
    if isinstance(exc, asyncio.TimeoutError):
        return f"timeout: no answer from {backend.name} within {backend.timeout_s:g} s"
    if isinstance(exc, PoolFull):
        return (f"pool: no free connection to {backend.name} within {backend.pool_timeout_s:g} s "
                f"({backend.max_connections} in use)")
    if isinstance(exc, Disconnected):
        return f"Disconnected: {backend.name} closed the connection without answering"
    if isinstance(exc, ConnectFailed):
        return f"ConnectFailed: cannot connect to {backend.name}"
    if isinstance(exc, BrokenBody):
        return f"BrokenBody: {backend.name} sent a broken body"
    if isinstance(exc, Malformed):
        return f"Malformed: {backend.name} sent a malformed response"
    if isinstance(exc, ConnectionError):
        return f"{type(exc).__name__}: the connection to {backend.name} failed"
    return f"{type(exc).__name__} with {backend.name}"


def _plain(status: int, text: str, close: bool = False) -> Answer:
    """A response the gateway makes itself: plain text, a fixed Server name."""
    return Answer(status, text, close)


def _bound_address(site: web.TCPSite) -> tuple:
    """A started site's bound (host, port) (port 0 picks a free one)."""
    server = cast(asyncio.Server, site._server)  # a started TCPSite listens with a server
    return server.sockets[0].getsockname()[:2]


class Gateway:
    """The proxy. ``emit_leg(leg, **envelope)`` and ``emit_pair(key, value)`` default to Kafka emitters."""

    def __init__(self, config: GatewayConfig, *, emit_leg: Callable | None = None,
                 emit_pair: Callable | None = None, tracer_provider=None, bootstrap: str = "",
                 requests_topic: str = "hub.requests"):
        self.config = config
        self.source = f"{GATEWAY_SOURCE_PREFIX}{config.name}"
        self._emitters = []
        if emit_leg is None or emit_pair is None:
            from hub.emit import EventEmitter
            servers = config.bootstrap or bootstrap
            if emit_leg is None:
                legs = EventEmitter(servers, config.requests_topic or requests_topic, source=self.source,
                                    linger=EMIT_LINGER_S, batch_events=EMIT_BATCH_EVENTS)
                self._emitters.append(legs)
                emit_leg = legs.emit_leg
            if emit_pair is None:
                pairs = EventEmitter(servers, config.pairs_topic, source=self.source,
                                     linger=EMIT_LINGER_S, batch_events=EMIT_BATCH_EVENTS)
                self._emitters.append(pairs)
                emit_pair = pairs.emit
        self._emit_leg = emit_leg
        self._emit_pair = emit_pair
        self._tracer_provider = tracer_provider
        if tracer_provider is None and config.spans_topic:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from hub.emit import KafkaSpanExporter
            tracer_provider = TracerProvider(resource=Resource.create({"service.name": f"hub-gateway-{config.name}"}))
            tracer_provider.add_span_processor(BatchSpanProcessor(
                KafkaSpanExporter(config.bootstrap or bootstrap, topic=config.spans_topic)))
            self._tracer_provider = tracer_provider
        self.tracer = (tracer_provider.get_tracer("hub.gateway") if tracer_provider is not None
                       else trace.get_tracer("hub.gateway"))
        # Without a tracer provider (none given, none set globally by the application before the
        # gateway starts) spans would be no-ops: they are skipped, and a client's traceparent
        # passes through unchanged, as it would anyway.
        self._tracing = tracer_provider is not None or not isinstance(
            trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
        self._span = self.tracer.start_as_current_span if self._tracing else _no_span
        self.bulkhead = Bulkheads(config.bulkhead.max_concurrent, config.bulkhead.max_queue, config.bulkhead.max_bytes)
        nondet = {r.path: r.shadow.nondeterministic for r in config.routes if r.shadow}
        nondet["*"] = config.nondeterministic
        self.noise = NoiseModel(nondet, noise_rate=config.noise_rate)
        self.policy = PairPolicy(config.latency_factor, config.latency_slack_ms)
        self._shadow_share = {r.path: ExactShare(r.shadow.percent) for r in config.routes if r.shadow}
        self._canary_share = {r.path: ExactShare(r.canary.weight * 100) for r in config.routes if r.canary}
        self.counters = {"requests": 0, "not_found": 0, "primary": 0, "canary": 0, "shadow_selected": 0,
                         "shadow_sent": 0, "shadow_dropped": 0, "secondary_sent": 0, "backend_errors": 0,
                         "backend_timeouts": 0, "client_disconnects": 0, "pairs": 0, "chained": 0, "loops": 0,
                         "bad_requests": 0, "paths_normalized": 0, "trusted": 0, "shadow_unsafe": 0,
                         "shadow_not_compared": 0, "emit_refused": 0, "response_headers_dropped": 0,
                         "slow_bodies": 0, "connections_refused": 0, "pool_full": 0}
        self.outcomes: dict[str, int] = {}
        self.trust = Trust(config.trust_secret, config.trust_peers)
        self._pools: dict[str, Pool] = {}
        self._server: ProtocolServer | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._admin: web.AppRunner | None = None
        self.admin_address: tuple | None = None
        self._refusals_logged: set[str] = set()
        self.emit_problem = ""                          # why the emitters cannot deliver now, "" when they can
        self._emit_down: dict[str, float] = {}          # topic: since when its emitter is not connected
        self._emit_drops: dict[str, tuple[int, float]] = {}   # topic: its drops when last seen, when they last grew
        self._emit_watch: asyncio.Task | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        # one pool per backend, of backends.<name>.max_connections: beyond it a request waits for a
        # free connection (up to the backend's pool_timeout_s, then 503). A request is never re-sent:
        # a backend that hangs up is one 502 and one leg that says so.
        for backend in self.config.backends.values():
            self._pools[backend.name] = Pool(backend.url, backend.max_connections, backend.timeout_s,
                                             backend.pool_timeout_s)
        await self.bulkhead.start()
        if self._emitters:
            self._emit_watch = asyncio.get_running_loop().create_task(self._watch_emitters())
        loop = asyncio.get_running_loop()
        self._server = ProtocolServer(self.proxy, max_connections=self.config.max_connections,
                                      on_refused=self._connection_refused,
                                      keepalive_timeout=self.config.idle_timeout_s,
                                      head_timeout=self.config.header_timeout_s)
        self._listener = await loop.create_server(self._server, host or self.config.host,
                                                  self.config.port if port is None else port,
                                                  reuse_address=True, backlog=1024)
        self.address = self._listener.sockets[0].getsockname()[:2]
        if self.config.admin_host:
            admin = web.Application()
            admin.router.add_get("/health", self._health)
            admin.router.add_get("/metrics", self._metrics)
            self._admin = web.AppRunner(admin, access_log=None)
            await self._admin.setup()
            admin_site = web.TCPSite(self._admin, self.config.admin_host, self.config.admin_port)
            await admin_site.start()
            self.admin_address = _bound_address(admin_site)
        return self.address

    def _connection_refused(self) -> None:
        self.counters["connections_refused"] += 1
        if "connections" not in self._refusals_logged:
            self._refusals_logged.add("connections")
            log.warning("refused a connection: %d open (gateway.max_connections); counted in connections_refused",
                        self.config.max_connections)

    def _emitters_problem(self) -> str:
        """Why the emitters cannot deliver now: not connected to Kafka for EMIT_GRACE_S, or events
        dropped within EMIT_DROP_WINDOW_S; "" when they can."""
        now = time.monotonic()
        reasons = []
        for emitter in self._emitters:
            st = emitter.stats()
            topic = emitter.topic
            if st.get("connected"):
                self._emit_down.pop(topic, None)
            elif now - self._emit_down.setdefault(topic, now) >= EMIT_GRACE_S:
                reasons.append(f"the emitter for {topic} is not connected to Kafka at {emitter.bootstrap} "
                               f"(for {now - self._emit_down[topic]:.0f} s)")
            drops = st.get("dropped_send_failed", 0) + st.get("dropped_buffer_full", 0)
            before, at = self._emit_drops.get(topic, (0, -1e18))
            if drops > before:
                at = now
            self._emit_drops[topic] = (drops, at)
            if now - at < EMIT_DROP_WINDOW_S:
                reasons.append(f"the emitter for {topic} dropped events ({drops} so far)")
        return "; ".join(reasons)

    async def _watch_emitters(self) -> None:
        """Keep ``emit_problem`` current; one warning when the emitters start failing, one line when they recover."""
        while True:
            await asyncio.sleep(EMIT_CHECK_S)
            problem = self._emitters_problem()
            if problem and not self.emit_problem:
                log.warning("gateway %s cannot deliver its legs and pairs: %s; /health says degraded",
                            self.config.name, problem)
            elif self.emit_problem and not problem:
                log.info("gateway %s delivers its legs and pairs again", self.config.name)
            self.emit_problem = problem

    def undelivered(self) -> int:
        """Legs and pairs that never reached Kafka: refused by an emitter, or dropped by it after
        being taken (its send failed, or it was still buffered when the emitter closed)."""
        return self.counters["emit_refused"] + sum(e.stats().get("dropped_send_failed", 0) for e in self._emitters)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the shadow work queued so far is done."""
        await self.bulkhead.join(timeout)

    async def close(self) -> None:
        """Stop: no new connections; the requests in flight finish (up to ``shutdown_timeout_s``),
        then the queued shadows (up to the same again); every shadow not done by then is emitted as
        dropped (a shadow leg and a ``dropped_by_bulkhead`` pair). Then the emitters are flushed."""
        if self._emit_watch is not None:
            self._emit_watch.cancel()
            self._emit_watch = None
        if self._listener is not None:
            self._listener.close()  # no new connections
        if self._server is not None:
            await self._server.shutdown(self.config.shutdown_timeout_s)
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        await self.bulkhead.close(grace=self.config.shutdown_timeout_s)
        if self._admin is not None:
            await self._admin.cleanup()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        for emitter in self._emitters:
            await asyncio.to_thread(emitter.close, 5)
        if self._tracer_provider is not None and hasattr(self._tracer_provider, "shutdown"):
            self._tracer_provider.shutdown()

    def stats(self) -> dict:
        return {**self.counters, "bulkhead": {**self.bulkhead.stats, "bytes": self.bulkhead.bytes},
                "bulkheads": {k: {**h.stats, "queued": h.queued, "bytes": h.bytes}
                              for k, h in self.bulkhead.heads.items()},
                "outcomes": dict(self.outcomes), "noise": self.noise.snapshot()}

    # ---- admin --------------------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        out = {"status": "degraded" if self.emit_problem else "ok", "gateway": self.config.name,
               "shadow_queue": self.bulkhead.queued, "shadow_bytes": self.bulkhead.bytes}
        if self.emit_problem:
            out["reason"] = self.emit_problem  # the proxy still serves: degraded, not down
        return web.json_response(out)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=exposition(self.metric_families()), headers={"Content-Type": CONTENT_TYPE})

    def metric_families(self) -> Families:
        """The gateway's counters, its bulkhead's and its emitters' now, labelled with its name."""
        out, gateway = Families(), self.config.name
        for key, value in self.counters.items():
            out.add(f"hub_gateway_{key}_total", value, kind="counter", help=f"Gateway count: {key}.", gateway=gateway)
        for key, value in self.bulkhead.stats.items():
            out.add(f"hub_gateway_bulkhead_{key}_total", value, kind="counter", help=f"Shadow bulkhead count: {key}.",
                    gateway=gateway)
        out.add("hub_gateway_bulkhead_queued", self.bulkhead.queued, kind="gauge",
                help="Shadow requests waiting in the bulkhead.", gateway=gateway)
        out.add("hub_gateway_bulkhead_bytes", self.bulkhead.bytes, kind="gauge",
                help="Bytes of the shadow requests held by the bulkhead.", gateway=gateway)
        for outcome, value in sorted(self.outcomes.items()):
            out.add("hub_gateway_pairs_by_outcome_total", value, kind="counter", help="Shadow pairs by outcome.",
                    gateway=gateway, outcome=outcome)
        for emitter in self._emitters:
            for key, value in emitter.stats().items():
                out.add(f"hub_gateway_emitter_{key}", value, kind="untyped",
                        help=f"Event emitter: {key} (hub.emit.EventEmitter.stats).", gateway=gateway, topic=emitter.topic)
        return out

    # ---- routing ------------------------------------------------------------------------------
    def match(self, path: str, method: str) -> tuple[Route | None, bool]:
        """(route, method_allowed)."""
        found = None
        for route in self.config.routes:
            if route.regex.match(path):
                if not route.methods or method in route.methods:
                    return route, True
                found = found or route
        return found, False

    def _canary(self, route: Route, request: Exchange) -> bool:
        c = route.canary
        if c is None or c.weight <= 0:
            return False
        key = ""
        if c.sticky_header:
            key = request.headers.get(c.sticky_header, "")
        elif c.sticky_cookie:
            key = request.cookies.get(c.sticky_cookie, "")
        if key:
            return sticky_bucket(key) < c.weight
        return self._canary_share[route.path].take()

    # ---- forwarding ---------------------------------------------------------------------------
    async def _fetch(self, backend: Backend, method: str, path_qs: str, headers: CIMultiDict) -> _Response:
        """A shadow's request: the body read, hashed and kept up to compare_max_bytes."""
        started = time.perf_counter()
        body = _Body(self.config.compare_max_bytes)
        try:
            resp = await self._pools[backend.name].request(method, path_qs, headers.items())
            try:
                while chunk := await resp.read_chunk(_CHUNK):
                    body.add(chunk)
            finally:
                resp.release()
            return _Response.of(resp.status, body, (time.perf_counter() - started) * 1000,
                                resp.headers.get("Content-Encoding", ""))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters["backend_errors"] += 1
            return _Response(0, (time.perf_counter() - started) * 1000, describe(exc, backend),
                             timed_out=isinstance(exc, asyncio.TimeoutError))

    def _leg(self, cid, leg, route, method, backend, resp: _Response, started: datetime, req_bytes: int,
             exp: str, phase: str) -> RequestLeg:
        return RequestLeg(correlation_id=cid, leg=leg, gateway=self.config.name, route=route.path, method=method,
                          backend=backend, status=resp.status, latency_ms=round(resp.latency_ms, 3),
                          event_time=started, request_bytes=min(req_bytes, 4294967295),
                          response_bytes=min(resp.size, 4294967295),
                          response_hash=resp.digest if resp.status else "", error=resp.error,
                          experiment_id=exp, phase=phase)

    def _refused(self, what: str, reason: str) -> None:
        self.counters["emit_refused"] += 1
        if reason not in self._refusals_logged:  # once per reason; the counter has the rest
            self._refusals_logged.add(reason)
            log.warning("the emitter refused a %s (%s); counted in emit_refused", what, reason)

    def _emit(self, leg: RequestLeg, source: str) -> None:
        try:
            if self._emit_leg(leg, source=source) is False:
                self._refused("leg", "buffer full, closed or not encodable")
        except Exception as exc:  # emission never fails a request
            self._refused("leg", type(exc).__name__)

    def _emit_pair_record(self, pair: ShadowPair, source: str) -> None:
        self.counters["pairs"] += 1
        self.outcomes[pair.outcome] = self.outcomes.get(pair.outcome, 0) + 1
        try:
            if self._emit_pair(pair.correlation_id.encode(), encode_pair(pair, source)) is False:
                self._refused("pair", "buffer full, closed or not encodable")
        except Exception as exc:
            self._refused("pair", type(exc).__name__)

    async def proxy(self, request: Exchange) -> Answer | None:
        """Forward one request; an Answer when the gateway answers it itself, else None (answered)."""
        self.counters["requests"] += 1
        method = request.method
        try:
            path, query = normalize_target(request.raw_path)
        except BadTarget as exc:
            self.counters["bad_requests"] += 1
            log.info("refused a %s request from %s: %s", method, request.remote, exc)
            return _plain(400, f"bad request: {exc}\n", close=True)
        path_qs = f"{path}?{query}" if query else path
        if path_qs != request.raw_path:
            self.counters["paths_normalized"] += 1
        route, allowed = self.match(path, method)
        if route is None:
            self.counters["not_found"] += 1
            return _plain(404, "no route\n")
        if not allowed:
            return _plain(405, "method not allowed on this route\n")
        headers_in = request.headers
        if not _utf8_headers(headers_in.values()):
            # bytes that are not UTF-8 cannot be forwarded unaltered by the HTTP client: refused, never mangled
            self.counters["bad_requests"] += 1
            log.info("refused a %s request from %s: a header value is not UTF-8", method, request.remote)
            return _plain(400, "bad request: a header value is not UTF-8\n", close=True)
        if not valid_host(headers_in.getall("Host", ())):
            # forwarded as X-Forwarded-Host and in Forwarded: only a plain host name or address, and a port
            self.counters["bad_requests"] += 1
            log.info("refused a %s request from %s: a malformed Host header", method, request.remote)
            return _plain(400, "bad request: a malformed Host header\n", close=True)
        overrides = overrides_method(headers_in)
        if route.methods and any(m not in route.methods for m in overrides):
            return _plain(405, "method not allowed on this route\n")
        trusted = self.trust.trusts(headers_in, request.remote)
        if trusted:
            self.counters["trusted"] += 1
        via = parse_via(headers_in.get(HEADER_VIA, "")) if trusted else ()
        if self.config.name in via:
            self.counters["loops"] += 1
            return _plain(508, f"loop detected: {' -> '.join(via + (self.config.name,))}\n")
        if len(via) >= MAX_HOPS:
            self.counters["loops"] += 1
            return _plain(508, f"more than {MAX_HOPS} gateways in a chain\n")
        source = self.source
        if via:
            self.counters["chained"] += 1
            source = GATEWAY_SOURCE_PREFIX + "/".join(via + (self.config.name,))
        # the gateway's own headers: an upstream gateway's are taken, a client's never
        given_cid = headers_in.get(HEADER_CID, "")
        if trusted and valid_correlation_id(given_cid):
            cid, client_cid = given_cid, headers_in.get(HEADER_CLIENT_CID, "")
        else:
            cid, client_cid = _new_correlation_id(), given_cid
        exp = _label(headers_in.get(HEADER_EXP, "")) if trusted else ""
        exp = exp or self.config.experiment_id
        phase = _label(headers_in.get(HEADER_PHASE, "")) if trusted else ""
        replayed = trusted and bool(headers_in.get(HEADER_SHADOW))  # a shadow replay by an upstream gateway
        canary = self._canary(route, request)
        leg_name = "canary" if canary else "primary"
        backend = self.config.backends[route.canary.backend if canary and route.canary else route.backend]
        headers = CIMultiDict(end_to_end(headers_in.items(), _NOT_FORWARDED))
        headers.extend(forwarding(headers_in, request.remote, request.scheme, trusted))
        headers[HEADER_CID] = cid
        if client_cid:
            headers[HEADER_CLIENT_CID] = client_cid
        headers[HEADER_VIA] = ",".join(via + (self.config.name,))
        if exp:
            headers[HEADER_EXP] = exp
        if phase:
            headers[HEADER_PHASE] = phase
        if replayed:
            headers[HEADER_SHADOW] = "1"
        # a request is safe to replay only when nothing about it can write
        has_body = request.body_exists
        unsafe = bool(overrides) or has_body or method not in _SAFE or replayed
        shadow = route.shadow
        shadowing = not canary and shadow is not None and method in shadow.methods
        if shadowing and unsafe:
            self.counters["shadow_unsafe"] += 1
            shadowing = False
        # the request body streams through; its length is kept when the client gave one
        upload = None
        sent = _Upload(self.config.body_idle_timeout_s, self.config.body_min_rate)
        if has_body:
            upload = sent.stream(request.content)
            if headers_in.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
                # the gateway takes the body itself: the client need not wait for the backend's 100
                await request.continue_100()
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        body = _Body(self.config.compare_max_bytes if shadowing else 0)
        status, encoding, error, timed_out = 0, "", "", False
        with self._span(f"{method} {route.path}", kind=trace.SpanKind.SERVER) as span:
            span.set_attribute(ATTR_CORRELATION_ID, cid)
            span.set_attribute(ATTR_GATEWAY_LEG, leg_name)
            span.set_attribute("http.route", route.path)
            span.set_attribute("url.path", path)  # the normalised path: what was routed and forwarded
            if via:
                span.set_attribute(ATTR_CHAIN, ",".join(via))
            if exp:
                span.set_attribute(ATTR_EXPERIMENT_ID, exp)
            if client_cid:
                span.set_attribute(ATTR_CLIENT_CID, client_cid)
            with self._span(f"{leg_name} {backend.name}", kind=trace.SpanKind.CLIENT) as cs:
                cs.set_attribute(ATTR_GATEWAY_LEG, leg_name)
                cs.set_attribute("server.backend", backend.name)
                if self._tracing:
                    inject(headers)
                pool_wait = False
                resp = None
                try:
                    resp = await self._pools[backend.name].request(method, path_qs, self._for(backend, headers).items(),
                                                                   upload, request.content_length)
                    status = resp.status
                    encoding = resp.headers.get("Content-Encoding", "")
                    headers_out = end_to_end(resp.headers.items())
                    if not _utf8_headers(v for _, v in headers_out):
                        headers_out = self._utf8_only(headers_out)
                    if "Server" not in resp.headers:  # else the HTTP server would name itself
                        headers_out.append(("Server", SERVER_NAME))
                    length = resp.length
                    has_content = method != "HEAD" and status not in (204, 304)
                    if has_content and length is not None and length <= _CHUNK:
                        # a small body: read, then head and body in one write
                        data = await resp.read()
                        resp.release()
                        body.add(data)
                        await request.send(status, resp.reason, headers_out, data)
                    else:
                        await request.start(status, resp.reason, headers_out, length)
                        if has_content:
                            while chunk := await resp.read_chunk(_CHUNK):
                                body.add(chunk)
                                await request.write(chunk)
                        await request.finish()
                    resp.release()
                except asyncio.CancelledError:
                    if request.stopped:
                        # the gateway's own stop cut it off (shutdown_timeout_s ran out): neither the
                        # client's doing nor the backend's answer; the client gets 503 if nothing was sent
                        error = "gateway: stopped before the answer (shutdown timeout)"
                        if not request.prepared:
                            status = 503
                    else:
                        # the client went away: the backend request is cancelled with it
                        self.counters["client_disconnects"] += 1
                        error = "client: closed the connection before the answer (the backend request was cancelled)"
                        if not request.prepared:
                            status = 408  # the client's doing: status 0 is a backend that gave no answer
                    self._emit(self._leg(cid, leg_name, route, method, backend.name,
                                         _Response.of(status, body, _since(sent, t0), error=error),
                                         started, sent.size, exp, phase), source)
                    raise
                except Exception as exc:
                    timed_out = isinstance(exc, asyncio.TimeoutError)
                    pool_wait = isinstance(exc, PoolFull)
                    if pool_wait:
                        self.counters["pool_full"] += 1
                        error, timed_out = describe(exc, backend), False
                    elif sent.slow:
                        # the client, not the backend: the backend request is cancelled, the client gets 408
                        self.counters["slow_bodies"] += 1
                        error, timed_out = sent.slow, False
                    elif sent.gone:
                        # the client went away (or broke its body) mid-upload: the backend request is
                        # cancelled; the client's failure, 408, never the backend's
                        self.counters["client_disconnects"] += 1
                        error = sent.gone
                    elif isinstance(exc, ConnectionError) and request.prepared and request.transport is None:
                        self.counters["client_disconnects"] += 1
                        error = "client: closed the connection during the answer"
                    else:
                        self.counters["backend_timeouts" if timed_out else "backend_errors"] += 1
                        error = describe(exc, backend)
                    if not request.prepared:
                        status = 408 if sent.slow or sent.gone else 0
                finally:
                    if resp is not None:
                        resp.release()  # back to the pool only when its answer was read whole
                cs.set_attribute("http.response.status_code", status)
            if has_body:
                cs.set_attribute("gateway.upload_ms", round(((sent.done or time.perf_counter()) - t0) * 1000, 3))
            resp_rec = _Response.of(status, body, _since(sent, t0), encoding, error)
            self.counters[leg_name] += 1
            primary_leg = self._leg(cid, leg_name, route, method, backend.name, resp_rec, started, sent.size,
                                    exp, phase)
            self._emit(primary_leg, source)
            if shadowing and not error and status and self._shadow_share[route.path].take():
                self.counters["shadow_selected"] += 1
                ctx = trace.set_span_in_context(span) if self._tracing else None
                job = self._shadow_job(route, method, path_qs, headers, primary_leg, resp_rec, ctx, source)
                held = len(resp_rec.body) if resp_rec.body is not None else 0
                if not self.bulkhead.submit(self._bulkhead_key(route), job, held,
                                            self._drop_callback(route, method, primary_leg, source)):
                    self._dropped(route, method, primary_leg, source)
        if request.prepared:
            if error:  # the head went out already: the client sees the connection end early
                if request.transport is not None:
                    request.transport.close()
            return None
        if sent.slow:
            log.info("cut off a %s request body from %s: %s", method, request.remote, sent.slow[len("client: "):])
            return _plain(408, "request timeout: the request body came too slowly\n", close=True)
        if sent.gone:
            return _plain(400, "bad request: the request body ended early\n", close=True)
        if pool_wait:
            return _plain(503, f"service unavailable: {backend.name} is busy\n")
        if timed_out:
            return _plain(504, f"gateway timeout: {backend.name}\n")
        return _plain(502, f"bad gateway: {backend.name}\n")

    def _utf8_only(self, headers: list) -> list:
        """A backend's response headers without those whose value is not UTF-8 (the server would
        write them altered), counted and logged once."""
        kept = [(k, v) for k, v in headers if _utf8_headers((v,))]
        self.counters["response_headers_dropped"] += len(headers) - len(kept)
        if "non-utf8" not in self._refusals_logged:
            self._refusals_logged.add("non-utf8")
            log.warning("dropped a response header whose value is not UTF-8; counted in response_headers_dropped")
        return kept

    def _for(self, backend: Backend, headers: CIMultiDict) -> CIMultiDict:
        """The headers for ``backend``: the shared secret only to a chained gateway."""
        if backend.kind == "gateway" and self.config.trust_secret:
            headers = headers.copy()
            headers[HEADER_SECRET] = self.config.trust_secret
        return headers

    # ---- shadowing ----------------------------------------------------------------------------
    def _dropped(self, route: Route, method: str, primary: RequestLeg, source: str, reason: str = "") -> None:
        self.counters["shadow_dropped"] += 1
        assert route.shadow is not None  # only a shadowed route's shadows are dropped
        dropped = RequestLeg(correlation_id=primary.correlation_id, leg="shadow", gateway=self.config.name,
                             route=route.path, method=method, backend=route.shadow.backend, status=0, latency_ms=0.0,
                             event_time=datetime.now(UTC),
                             error=f"{DROPPED_BY_BULKHEAD}: {reason}" if reason else DROPPED_BY_BULKHEAD,
                             experiment_id=primary.experiment_id, phase=primary.phase)
        self._emit(dropped, source)
        self._emit_pair_record(make_pair(_view(primary), _view(dropped), policy=self.policy), source)

    def _bulkhead_key(self, route: Route) -> str:
        """Which bulkhead a route's shadows go to (``bulkhead.scope``)."""
        scope = self.config.bulkhead.scope
        if scope == "shadow":
            assert route.shadow is not None  # asked only for a shadowed route
            return route.shadow.backend
        return route.path if scope == "route" else "*"

    def _drop_callback(self, route: Route, method: str, primary: RequestLeg, source: str):
        return lambda reason: self._dropped(route, method, primary, source, reason)

    def _comparable(self, resp: _Response) -> bytes | None:
        """The body to compare field by field, decoded; None when too large or not decodable."""
        if resp.body is None:
            return None
        return decode_body(resp.body, resp.encoding, self.config.compare_max_bytes)

    def _shadow_job(self, route: Route, method: str, path_qs: str, headers: CIMultiDict,
                    primary: RequestLeg, primary_resp: _Response, ctx, source: str):
        async def run() -> None:
            shadow_cfg = route.shadow
            assert shadow_cfg is not None  # a job is made only for a shadowed route
            shadow_headers = headers.copy()
            shadow_headers[HEADER_SHADOW] = "1"
            with self._span(f"shadow {shadow_cfg.backend}", context=ctx,
                                                   kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute(ATTR_CORRELATION_ID, primary.correlation_id)
                span.set_attribute(ATTR_GATEWAY_LEG, "shadow")
                started = datetime.now(UTC)
                shadow_backend = self.config.backends[shadow_cfg.backend]
                calls = [self._fetch(shadow_backend, method, path_qs, self._for(shadow_backend, shadow_headers))]
                if shadow_cfg.secondary:
                    secondary = self.config.backends[shadow_cfg.secondary]
                    calls.append(self._fetch(secondary, method, path_qs, self._for(secondary, shadow_headers)))
                results = await asyncio.gather(*calls)
                span.set_attribute("http.response.status_code", results[0].status)
            self.counters["shadow_sent"] += 1
            shadow_leg = self._leg(primary.correlation_id, "shadow", route, method, shadow_cfg.backend, results[0],
                                   started, 0, primary.experiment_id, primary.phase)
            self._emit(shadow_leg, source)
            primary_body = self._comparable(primary_resp)
            secondary_leg = None
            if shadow_cfg.secondary:
                self.counters["secondary_sent"] += 1
                sec = results[1]
                secondary_leg = self._leg(primary.correlation_id, "shadow", route, method, shadow_cfg.secondary, sec,
                                          started, 0, primary.experiment_id, primary.phase)
                self._emit(secondary_leg, source)
                # the noise model learns only from bodies it could compare field by field, of
                # primary and secondary answers that both succeeded with the same status
                sec_body = self._comparable(sec) if sec.status and not sec.error else None
                if primary_body is not None and sec_body is not None:
                    clean = clean_comparison(primary_resp.status, sec.status)
                    self.noise.observe_secondary(route.path, body_diff(primary_body, sec_body) if clean else (),
                                                 primary_status=primary_resp.status, secondary_status=sec.status)
            differing = None
            shadow_resp = results[0]
            if shadow_resp.status and primary_resp.status:
                shadow_body = self._comparable(shadow_resp)
                if primary_body is not None and shadow_body is not None:
                    differing = body_diff(primary_body, shadow_body)
                else:  # too large or not decodable: compare hashes and sizes
                    self.counters["shadow_not_compared"] += 1
                    same = (primary_resp.digest, primary_resp.size) == (shadow_resp.digest, shadow_resp.size)
                    differing = [] if same else [WHOLE_BODY]
            pair = make_pair(_view(primary), _view(shadow_leg),
                             secondary=_view(secondary_leg) if secondary_leg else None,
                             differing=differing, noise=self.noise, policy=self.policy)
            self._emit_pair_record(pair, source)
        return run


class _NoSpan:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set_attribute(self, key, value) -> None:
        pass


_NO_SPAN = _NoSpan()


def _no_span(*args, **kwargs) -> _NoSpan:
    return _NO_SPAN


_LABEL = re.compile(r"^[A-Za-z0-9._:/@+=-]{1,200}$")


def _label(value: str) -> str:
    """An experiment id or phase from an upstream gateway, or "" when it is not a plain label."""
    return value if _LABEL.match(value) else ""


def _utf8_headers(values) -> bool:
    """True when every value is ASCII or valid UTF-8 (the server decodes other bytes to surrogates)."""
    for v in values:
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


class _SlowBody(Exception):
    """The client sent the request body too slowly (a pause or an average rate below the minimum)."""


class _ClientGone(ConnectionError):
    """The client's request body ended early: it closed the connection or broke the body's framing."""


class _Upload:
    """A request body streaming to the backend: its size, when the last byte went out, and whether
    the client was cut off for being too slow. A read waits at most ``idle`` seconds, and after the
    first ``idle`` seconds the body must average ``min_rate`` bytes/s (``min_rate`` 0: no rate check)."""

    __slots__ = ("size", "done", "slow", "gone", "started", "idle", "min_rate")

    def __init__(self, idle: float, min_rate: float):
        self.size = 0
        self.done: float | None = None   # perf_counter when the whole body was handed to the backend
        self.slow = ""                   # why the client was cut off
        self.gone = ""                   # the client went away (or broke its body's framing) mid-body
        self.started = False             # a body began to stream
        self.idle = idle
        self.min_rate = min_rate

    async def stream(self, stream):
        start = time.perf_counter()
        self.started = True
        while True:
            wait = self.idle
            if self.min_rate > 0:
                wait = min(wait, start + self.idle + self.size / self.min_rate - time.perf_counter())
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                chunk = await asyncio.wait_for(stream.read(_CHUNK), wait)
            except asyncio.TimeoutError:
                paused = wait >= self.idle
                self.slow = (f"client: the request body paused longer than {self.idle:g} s" if paused else
                             f"client: the request body arrived slower than {self.min_rate:g} bytes/s")
                raise _SlowBody(self.slow) from None
            except Exception as exc:
                # the client's side of the body failed (it closed the connection, or its chunked
                # framing broke): the client's failure, never the backend's
                self.gone = (f"client: the request body ended early ({type(exc).__name__}) after "
                             f"{self.size} bytes")
                raise _ClientGone(self.gone) from None
            if not chunk:
                break
            self.size += len(chunk)
            yield chunk
        self.done = time.perf_counter()


def _since(sent: _Upload, t0: float) -> float:
    """A leg's latency in ms: from the moment the whole request (head and body) was handed to the
    backend until the response was relayed; a client's upload time is not the backend's. 0 when
    the body never went out whole."""
    if sent.slow or sent.gone or (sent.started and sent.done is None):
        return 0.0
    return max(time.perf_counter() - (sent.done or t0), 0.0) * 1000


def _view(leg: RequestLeg) -> LegView:
    return LegView(leg.correlation_id, leg.leg, leg.gateway, leg.route, leg.method, leg.backend, leg.status,
                   leg.latency_ms, leg.event_time, leg.response_hash, leg.error, leg.experiment_id, leg.phase)


async def serve(config: GatewayConfig, *, bootstrap: str = "", requests_topic: str = "hub.requests",
                ready: Callable[[tuple], None] | None = None, stopped: Callable[[str], None] | None = None) -> None:
    """Run the gateway until cancelled, or until SIGTERM (as Docker, Kubernetes and systemd stop
    it): either way it stops accepting, finishes the requests in flight and flushes its emitters
    before returning, so the last legs and pairs reach Kafka. ``stopped`` gets one line saying how
    the stop went (by default it is logged)."""
    gateway = Gateway(config, bootstrap=bootstrap, requests_topic=requests_topic)
    address = await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests, embedding)
        pass
    if ready is not None:
        ready(address)
    try:
        await stop.wait()
    finally:
        started = time.perf_counter()
        try:
            await gateway.close()
        finally:
            c = gateway.stats()
            line = (f"gateway {config.name} stopped in {time.perf_counter() - started:.1f} s: {c['requests']} "
                    f"requests, {c['shadow_sent']} shadows sent, {c['shadow_dropped']} dropped, {c['pairs']} pairs, "
                    f"{gateway.undelivered()} legs or pairs not delivered (refused or dropped by the emitters)")
            (stopped or log.info)(line)
