"""The gateway: an aiohttp server forwarding to backends with one aiohttp ClientSession.

Per request: match the route (first match; 404 when none, 405 when the method is not allowed),
take or make the correlation id (``X-Correlation-Id``), pick the target (the canary backend for
the canary's share, sticky by a header or cookie when configured), forward, emit the leg
(``primary`` or ``canary``), and answer. When the route shadows and the method is safe, a
per-route counter selects exactly ``percent`` % of those requests (over any n requests,
floor(n * percent / 100) of them); a selected request is handed to the bulkhead, which replays
it to the shadow backend (and to the secondary, when configured) in the background. A full
bulkhead drops it: counted, emitted as a shadow leg with status 0 and error
``dropped by bulkhead``, and as a pair with outcome ``dropped_by_bulkhead``.

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
import re
import signal
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.propagate import inject
from yarl import URL

from hub.gateway.bulkhead import Bulkhead
from hub.gateway.config import Backend, GatewayConfig, Route
from hub.gateway.headers import (
    FORWARDING, HEADER_CID, HEADER_CLIENT_CID, HEADER_EXP, HEADER_PHASE, HEADER_SECRET, HEADER_SHADOW, HEADER_VIA,
    OWN, Trust, end_to_end, forwarding, overrides_method, valid_correlation_id)
from hub.gateway.paths import BadTarget, normalize_target
from hub.names import ATTR_CORRELATION_ID, ATTR_EXPERIMENT_ID, ATTR_GATEWAY_LEG
from hub.records.request_leg import RequestLeg
from hub.shadow.noise import NoiseModel, body_diff
from hub.shadow.pairing import DROPPED_BY_BULKHEAD, GATEWAY_SOURCE_PREFIX, LegView, PairPolicy, make_pair
from hub.shadow.records import ShadowPair, encode_pair

log = logging.getLogger(__name__)
UTC = timezone.utc

ATTR_CHAIN = "gateway.chain"
ATTR_CLIENT_CID = "gateway.client_correlation_id"
MAX_HOPS = 16
_GATEWAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # as gateway.name in the configuration
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# headers the HTTP client must not add on its own (the client's own are passed as they came)
_SKIP_AUTO = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


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


def sticky_bucket(value: str) -> float:
    """A stable number in [0, 1) for a sticky key (crc32; the same in every gateway process)."""
    return zlib.crc32(value.encode()) / 2**32


@dataclass
class _Response:
    status: int
    body: bytes
    headers: list
    latency_ms: float
    error: str = ""


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
                legs = EventEmitter(servers, config.requests_topic or requests_topic, source=self.source)
                self._emitters.append(legs)
                emit_leg = legs.emit_leg
            if emit_pair is None:
                pairs = EventEmitter(servers, config.pairs_topic, source=self.source)
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
        self.bulkhead = Bulkhead(config.bulkhead.max_concurrent, config.bulkhead.max_queue)
        nondet = {r.path: r.shadow.nondeterministic for r in config.routes if r.shadow}
        nondet["*"] = config.nondeterministic
        self.noise = NoiseModel(nondet, noise_rate=config.noise_rate)
        self.policy = PairPolicy(config.latency_factor, config.latency_slack_ms)
        self._shadow_share = {r.path: ExactShare(r.shadow.percent) for r in config.routes if r.shadow}
        self._canary_share = {r.path: ExactShare(r.canary.weight * 100) for r in config.routes if r.canary}
        self.counters = {"requests": 0, "not_found": 0, "primary": 0, "canary": 0, "shadow_selected": 0,
                         "shadow_sent": 0, "shadow_dropped": 0, "secondary_sent": 0, "backend_errors": 0,
                         "pairs": 0, "chained": 0, "loops": 0, "bad_requests": 0, "paths_normalized": 0,
                         "trusted": 0, "shadow_unsafe": 0}
        self.outcomes: dict[str, int] = {}
        self.trust = Trust(config.trust_secret, config.trust_peers)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None))
        # aiohttp re-sends a request with a method it deems idempotent (GET, PUT, DELETE, ...) once
        # when a pooled keep-alive connection turns out closed (ClientSession._request). A gateway
        # never re-sends on its own: a backend that hangs up is one 502 and one leg that says so.
        if not hasattr(self._session, "_retry_connection"):
            raise RuntimeError("this aiohttp has no ClientSession._retry_connection; the gateway cannot "
                               "turn off its automatic re-sending")
        self._session._retry_connection = False
        await self.bulkhead.start()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host or self.config.host, self.config.port if port is None else port)
        await site.start()
        sock = site._server.sockets[0]  # the bound address (port 0 picks a free one)
        self.address = sock.getsockname()[:2]
        return self.address

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the shadow work queued so far is done."""
        await self.bulkhead.join(timeout)

    async def close(self) -> None:
        await self.bulkhead.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        for emitter in self._emitters:
            await asyncio.to_thread(emitter.close, 5)
        if self._tracer_provider is not None and hasattr(self._tracer_provider, "shutdown"):
            self._tracer_provider.shutdown()

    def stats(self) -> dict:
        return {**self.counters, "bulkhead": dict(self.bulkhead.stats), "outcomes": dict(self.outcomes),
                "noise": self.noise.snapshot()}

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

    def _canary(self, route: Route, request: web.Request) -> bool:
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
    async def _forward(self, backend: Backend, method: str, path_qs: str, headers: CIMultiDict,
                       body: bytes) -> _Response:
        started = time.perf_counter()
        try:
            # encoded=True: the path goes out exactly as normalised and routed, never re-normalised
            async with self._session.request(method, URL(backend.url + path_qs, encoded=True), headers=headers,
                                             data=body or None, skip_auto_headers=_SKIP_AUTO,
                                             allow_redirects=False,
                                             timeout=aiohttp.ClientTimeout(total=backend.timeout_s)) as resp:
                data = await resp.read()
                out_headers = end_to_end(resp.headers.items())
                return _Response(resp.status, data, out_headers, (time.perf_counter() - started) * 1000)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters["backend_errors"] += 1
            return _Response(0, b"", [], (time.perf_counter() - started) * 1000,
                             f"{type(exc).__name__}: {exc}"[:300])

    def _for(self, backend: Backend, headers: CIMultiDict) -> CIMultiDict:
        """The headers for ``backend``: the shared secret only to a chained gateway."""
        if backend.kind == "gateway" and self.config.trust_secret:
            headers = headers.copy()
            headers[HEADER_SECRET] = self.config.trust_secret
        return headers

    def _leg(self, cid, leg, route, method, backend, resp: _Response, started: datetime, req_bytes: int,
             exp: str, phase: str) -> RequestLeg:
        return RequestLeg(correlation_id=cid, leg=leg, gateway=self.config.name, route=route.path, method=method,
                          backend=backend, status=resp.status, latency_ms=round(resp.latency_ms, 3),
                          event_time=started, request_bytes=min(req_bytes, 4294967295),
                          response_bytes=min(len(resp.body), 4294967295),
                          response_hash=response_hash(resp.body) if resp.status else "", error=resp.error,
                          experiment_id=exp, phase=phase)

    def _emit(self, leg: RequestLeg, source: str) -> None:
        try:
            self._emit_leg(leg, source=source)
        except Exception:  # emission never fails a request
            log.debug("leg emission failed", exc_info=True)

    def _emit_pair_record(self, pair: ShadowPair, source: str) -> None:
        self.counters["pairs"] += 1
        self.outcomes[pair.outcome] = self.outcomes.get(pair.outcome, 0) + 1
        try:
            self._emit_pair(pair.correlation_id.encode(), encode_pair(pair, source))
        except Exception:
            log.debug("pair emission failed", exc_info=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.counters["requests"] += 1
        method = request.method
        try:
            path, query = normalize_target(request.raw_path)
        except BadTarget as exc:
            self.counters["bad_requests"] += 1
            log.info("refused %s request: %s", method, exc)
            return web.Response(status=400, text=f"bad request: {exc}\n")
        path_qs = f"{path}?{query}" if query else path
        if path_qs != request.raw_path:
            self.counters["paths_normalized"] += 1
        route, allowed = self.match(path, method)
        if route is None:
            self.counters["not_found"] += 1
            return web.Response(status=404, text="no route\n")
        if not allowed:
            return web.Response(status=405, text="method not allowed on this route\n")
        headers_in = request.headers
        overrides = overrides_method(headers_in)
        if route.methods and any(m not in route.methods for m in overrides):
            return web.Response(status=405, text="method not allowed on this route\n")
        trusted = self.trust.trusts(headers_in, request.remote)
        if trusted:
            self.counters["trusted"] += 1
        via = parse_via(headers_in.get(HEADER_VIA, "")) if trusted else ()
        if self.config.name in via:
            self.counters["loops"] += 1
            return web.Response(status=508, text=f"loop detected: {' -> '.join(via + (self.config.name,))}\n")
        if len(via) >= MAX_HOPS:
            self.counters["loops"] += 1
            return web.Response(status=508, text=f"more than {MAX_HOPS} gateways in a chain\n")
        source = self.source
        if via:
            self.counters["chained"] += 1
            source = GATEWAY_SOURCE_PREFIX + "/".join(via + (self.config.name,))
        # the gateway's own headers: an upstream gateway's are taken, a client's never
        given_cid = headers_in.get(HEADER_CID, "")
        if trusted and valid_correlation_id(given_cid):
            cid, client_cid = given_cid, headers_in.get(HEADER_CLIENT_CID, "")
        else:
            cid, client_cid = uuid.uuid4().hex, given_cid
        exp = (headers_in.get(HEADER_EXP, "") if trusted else "") or self.config.experiment_id
        phase = headers_in.get(HEADER_PHASE, "") if trusted else ""
        replayed = trusted and bool(headers_in.get(HEADER_SHADOW))  # a shadow replay by an upstream gateway
        body = await request.read()
        canary = self._canary(route, request)
        leg_name = "canary" if canary else "primary"
        backend = self.config.backends[route.canary.backend if canary else route.backend]
        headers = CIMultiDict(end_to_end(headers_in.items(), OWN | FORWARDING))
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
        unsafe = bool(overrides) or bool(body) or request.body_exists or method not in _SAFE or replayed
        started = datetime.now(UTC)
        with self.tracer.start_as_current_span(f"{method} {route.path}", kind=trace.SpanKind.SERVER) as span:
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
            with self.tracer.start_as_current_span(f"{leg_name} {backend.name}", kind=trace.SpanKind.CLIENT) as cs:
                cs.set_attribute(ATTR_GATEWAY_LEG, leg_name)
                cs.set_attribute("server.backend", backend.name)
                inject(headers)
                resp = await self._forward(backend, method, path_qs, self._for(backend, headers), body)
                cs.set_attribute("http.response.status_code", resp.status)
            self.counters[leg_name] += 1
            primary_leg = self._leg(cid, leg_name, route, method, backend.name, resp, started, len(body), exp, phase)
            self._emit(primary_leg, source)
            shadow = route.shadow
            if not canary and shadow is not None and method in shadow.methods and unsafe:
                self.counters["shadow_unsafe"] += 1
            elif not canary and shadow is not None and method in shadow.methods \
                    and self._shadow_share[route.path].take():
                self.counters["shadow_selected"] += 1
                ctx = trace.set_span_in_context(span)
                job = self._shadow_job(route, method, path_qs, headers, body, primary_leg, resp, ctx, source)
                if not self.bulkhead.submit(job):
                    self._dropped(route, method, primary_leg, source)
        if resp.status == 0:
            return web.Response(status=502, text=f"bad gateway: {backend.name}\n")
        return web.Response(status=resp.status, body=resp.body, headers=resp.headers)

    # ---- shadowing ----------------------------------------------------------------------------
    def _dropped(self, route: Route, method: str, primary: RequestLeg, source: str) -> None:
        self.counters["shadow_dropped"] += 1
        dropped = RequestLeg(correlation_id=primary.correlation_id, leg="shadow", gateway=self.config.name,
                             route=route.path, method=method, backend=route.shadow.backend, status=0, latency_ms=0.0,
                             event_time=datetime.now(UTC), error=DROPPED_BY_BULKHEAD,
                             experiment_id=primary.experiment_id, phase=primary.phase)
        self._emit(dropped, source)
        self._emit_pair_record(make_pair(_view(primary), _view(dropped), policy=self.policy), source)

    def _shadow_job(self, route: Route, method: str, path_qs: str, headers: dict, body: bytes,
                    primary: RequestLeg, primary_resp: _Response, ctx, source: str):
        async def run() -> None:
            shadow_cfg = route.shadow
            shadow_headers = headers.copy()
            shadow_headers[HEADER_SHADOW] = "1"
            with self.tracer.start_as_current_span(f"shadow {shadow_cfg.backend}", context=ctx,
                                                   kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute(ATTR_CORRELATION_ID, primary.correlation_id)
                span.set_attribute(ATTR_GATEWAY_LEG, "shadow")
                started = datetime.now(UTC)
                shadow_backend = self.config.backends[shadow_cfg.backend]
                calls = [self._forward(shadow_backend, method, path_qs, self._for(shadow_backend, shadow_headers),
                                       body)]
                if shadow_cfg.secondary:
                    secondary = self.config.backends[shadow_cfg.secondary]
                    calls.append(self._forward(secondary, method, path_qs, self._for(secondary, shadow_headers), body))
                results = await asyncio.gather(*calls)
                span.set_attribute("http.response.status_code", results[0].status)
            self.counters["shadow_sent"] += 1
            shadow_leg = self._leg(primary.correlation_id, "shadow", route, method, shadow_cfg.backend, results[0],
                                   started, len(body), primary.experiment_id, primary.phase)
            self._emit(shadow_leg, source)
            secondary_leg = None
            if shadow_cfg.secondary:
                self.counters["secondary_sent"] += 1
                sec = results[1]
                secondary_leg = self._leg(primary.correlation_id, "shadow", route, method, shadow_cfg.secondary, sec,
                                          started, len(body), primary.experiment_id, primary.phase)
                self._emit(secondary_leg, source)
                if sec.status and not sec.error and primary_resp.status:
                    self.noise.observe_secondary(route.path, body_diff(primary_resp.body, sec.body))
            differing = None
            if results[0].status and primary_resp.status:
                differing = body_diff(primary_resp.body, results[0].body)
            pair = make_pair(_view(primary), _view(shadow_leg),
                             secondary=_view(secondary_leg) if secondary_leg else None,
                             differing=differing, noise=self.noise, policy=self.policy)
            self._emit_pair_record(pair, source)
        return run


def _view(leg: RequestLeg) -> LegView:
    return LegView(leg.correlation_id, leg.leg, leg.gateway, leg.route, leg.method, leg.backend, leg.status,
                   leg.latency_ms, leg.event_time, leg.response_hash, leg.error, leg.experiment_id, leg.phase)


async def serve(config: GatewayConfig, *, bootstrap: str = "", requests_topic: str = "hub.requests",
                ready: Callable[[tuple], None] | None = None) -> None:
    """Run the gateway until cancelled, or until SIGTERM (as Docker, Kubernetes and systemd stop
    it): either way it stops accepting, finishes the requests in flight and flushes its emitters
    before returning, so the last legs and pairs reach Kafka."""
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
        await gateway.close()
