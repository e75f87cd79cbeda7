"""The gateway's YAML configuration, checked with precise errors (``GatewayConfigError``: the file,
the path of the bad key, and what was expected). See ``hub/gateway/README.md`` for the format."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hub.errors import UserError
from hub.storage.token import is_loopback  # noqa: F401  (part of this module's names)

__all__ = ["GatewayConfigError", "Backend", "Canary", "Shadow", "Route", "BulkheadConfig", "GatewayConfig",
           "is_loopback", "load_config", "parse_config", "config_warnings", "SHADOWABLE"]


class GatewayConfigError(UserError):
    pass


@dataclass(frozen=True)
class Backend:
    name: str
    url: str                  # base URL, no trailing slash
    kind: str = "service"     # service | gateway (a chained gateway: the correlation id travels on)
    timeout_s: float = 10.0
    max_connections: int = 100   # the pool of connections to this backend; beyond it requests wait
    pool_timeout_s: float = 1.0  # how long a request waits for a free connection of the pool (then 503)


@dataclass(frozen=True)
class Canary:
    backend: str
    weight: float             # share of the route's traffic, 0..1
    sticky_header: str = ""
    sticky_cookie: str = ""


@dataclass(frozen=True)
class Shadow:
    backend: str
    percent: float            # exact over the long run (a per-route counter selects)
    methods: tuple[str, ...] = ("GET", "HEAD")
    secondary: str = ""       # a second instance of the primary version, for the noise model
    nondeterministic: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    path: str                 # template: /patients/{id}; a final /{rest*} matches the rest of the path
    backend: str
    methods: tuple[str, ...] = ()   # empty: every method
    canary: Canary | None = None
    shadow: Shadow | None = None
    regex: Any = None


@dataclass(frozen=True)
class BulkheadConfig:
    max_concurrent: int = 8
    max_queue: int = 64
    max_bytes: int = 64 * 1024 * 1024   # primary bodies held for comparison by queued and running shadows
    scope: str = "shadow"   # one bulkhead per shadow backend (shadow), per route (route), or one (gateway)


@dataclass(frozen=True)
class GatewayConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 8080
    backends: dict[str, Backend] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    bulkhead: BulkheadConfig = BulkheadConfig()
    bootstrap: str = ""           # Kafka; empty: the hub's settings
    requests_topic: str = ""      # empty: the hub's HUB_TOPIC_REQUESTS
    pairs_topic: str = "hub.pairs"
    spans_topic: str = ""         # empty: no spans exported to Kafka (spans still made if a provider is given)
    nondeterministic: tuple[str, ...] = ()   # field globs that are noise on every route
    noise_rate: float = 0.01
    latency_factor: float = 2.0
    latency_slack_ms: float = 50.0
    experiment_id: str = ""
    trust_secret: str = ""        # an upstream gateway proves itself with X-Hub-Gateway-Secret
    trust_peers: tuple[str, ...] = ()   # or by its address (IPs or CIDR networks)
    admin_host: str = ""          # /health and /metrics; empty: no admin listener
    admin_port: int = 0
    header_timeout_s: float = 10.0     # a request's head must arrive within this
    idle_timeout_s: float = 60.0       # an idle keep-alive connection is closed after this
    shutdown_timeout_s: float = 10.0   # on stop: time for requests in flight and queued shadows
    body_idle_timeout_s: float = 10.0  # a request body may pause this long between bytes (and starts the rate check)
    body_min_rate: float = 1024.0      # bytes/s a request body must average after body_idle_timeout_s; 0: no check
    max_connections: int = 1024        # client connections open at once; beyond: 503 and closed
    server: str = "protocol"           # the HTTP server of the proxy port: "protocol" (hub.gateway.server)
    compare_max_bytes: int = 1024 * 1024   # bodies compared field by field up to this; beyond: hash and size


def _listen(ctx, value, path: str) -> tuple[str, int]:
    listen = str(value)
    host, _, port_s = listen.rpartition(":")
    if not host or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        ctx.fail(path, f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port_s)


_KEYS = {
    "": {"gateway", "backends", "routes", "bulkhead", "emit", "comparison"},
    "gateway": {"name", "listen", "experiment_id", "trust", "admin_listen", "header_timeout_s", "idle_timeout_s",
                "shutdown_timeout_s", "body_idle_timeout_s", "body_min_rate", "max_connections", "server"},
    "trust": {"secret", "secret_env", "peers"},
    "emit": {"bootstrap", "requests_topic", "pairs_topic", "spans_topic"},
    "comparison": {"nondeterministic", "noise_rate", "latency_regression_factor", "latency_regression_slack_ms",
                   "max_body_bytes"},
    "bulkhead": {"max_concurrent", "max_queue", "max_bytes", "scope"},
    "backend": {"url", "kind", "timeout_s", "max_connections", "pool_timeout_s"},
    "route": {"path", "backend", "methods", "canary", "shadow"},
    "canary": {"backend", "weight", "sticky"},
    "sticky": {"header", "cookie"},
    "shadow": {"backend", "percent", "methods", "secondary", "nondeterministic"},
}
_METHOD = re.compile(r"^[A-Z]{1,20}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise GatewayConfigError(f"{self.source}: {path or 'top level'}: {message}")

    def mapping(self, value, path: str, kind: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(map(str, value)) - _KEYS[kind])
        if unknown:
            self.fail(path, f"unknown key {unknown[0]!r} (expected one of: {', '.join(sorted(_KEYS[kind]))})")
        return value

    def string(self, value, path: str, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            self.fail(path, f"{value!r} does not match {pattern.pattern}")
        return value

    def number(self, value, path: str, lo: float, hi: float, integer: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.fail(path, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        if not lo <= value <= hi:
            self.fail(path, f"{value!r} is out of range [{lo:g}, {hi:g}]")
        return value

    def methods(self, value, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.fail(path, "expected a non-empty list of HTTP methods")
        return tuple(self.string(m, f"{path}[{i}]", _METHOD) for i, m in enumerate(value))

    def globs(self, value, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(path, "expected a list of field paths (globs such as meta.generated_at or items[].ts)")
        return tuple(self.string(g, f"{path}[{i}]") for i, g in enumerate(value))


def _route_regex(template: str, ctx: _Ctx, path: str):
    if not template.startswith("/") or any(c in template for c in " ?#"):
        ctx.fail(path, f"route path {template!r} must start with / and hold no spaces, query or fragment")
    parts = template.strip("/").split("/") if template != "/" else []
    out = []
    for i, part in enumerate(parts):
        m = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}", part)
        if m and m.group(2):
            if i != len(parts) - 1:
                ctx.fail(path, f"{{{m.group(1)}*}} may only be the last segment")
            out.append("(?:/.*)?")
            break
        out.append("/[^/]+" if m else "/" + re.escape(part))
    return re.compile("^" + ("".join(out) or "/") + "/?$")


def _choice(ctx: _Ctx, value, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        ctx.fail(path, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def parse_config(doc: Any, source: str = "<config>") -> GatewayConfig:
    ctx = _Ctx(source)
    doc = ctx.mapping(doc, "", "")
    gw = ctx.mapping(doc.get("gateway") or {}, "gateway", "gateway")
    name = ctx.string(gw.get("name", "gateway"), "gateway.name", _NAME)
    host, port = _listen(ctx, gw.get("listen", "127.0.0.1:8080"), "gateway.listen")
    admin_host, admin_port = _listen(ctx, gw["admin_listen"], "gateway.admin_listen") if "admin_listen" in gw \
        else ("", 0)
    raw_backends = doc.get("backends")
    if not raw_backends:
        ctx.fail("backends", "at least one backend is required")
    if not isinstance(raw_backends, dict):
        ctx.fail("backends", "expected a mapping of backend name to {url: ...}")
    backends = {}
    for bname, b in raw_backends.items():
        p = f"backends.{bname}"
        ctx.string(bname, p, _NAME)
        b = ctx.mapping(b, p, "backend")
        url = ctx.string(b.get("url"), f"{p}.url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            ctx.fail(f"{p}.url", f"expected an http(s) base URL without query, got {url!r}")
        kind = b.get("kind", "service")
        if kind not in ("service", "gateway"):
            ctx.fail(f"{p}.kind", f"expected 'service' or 'gateway' (a chained gateway), got {kind!r}")
        backends[bname] = Backend(bname, url.rstrip("/"), kind,
                                  float(ctx.number(b.get("timeout_s", 10.0), f"{p}.timeout_s", 0.001, 3600)),
                                  int(ctx.number(b.get("max_connections", 100), f"{p}.max_connections", 1,
                                                 100_000, True)),
                                  float(ctx.number(b.get("pool_timeout_s", 1.0), f"{p}.pool_timeout_s", 0.001, 3600)))

    def backend_ref(value, p):
        ref = ctx.string(value, p)
        if ref not in backends:
            ctx.fail(p, f"unknown backend {ref!r} (defined: {', '.join(sorted(backends))})")
        return ref

    raw_routes = doc.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        ctx.fail("routes", "expected a non-empty list of routes")
    routes = []
    for i, r in enumerate(raw_routes):
        p = f"routes[{i}]"
        r = ctx.mapping(r, p, "route")
        template = ctx.string(r.get("path"), f"{p}.path")
        regex = _route_regex(template, ctx, f"{p}.path")
        primary = backend_ref(r.get("backend"), f"{p}.backend")
        methods = ctx.methods(r["methods"], f"{p}.methods") if "methods" in r else ()
        canary = None
        if r.get("canary") is not None:
            c = ctx.mapping(r["canary"], f"{p}.canary", "canary")
            sticky = ctx.mapping(c.get("sticky") or {}, f"{p}.canary.sticky", "sticky")
            if len(sticky) > 1:
                ctx.fail(f"{p}.canary.sticky", "give either header or cookie, not both")
            canary = Canary(backend_ref(c.get("backend"), f"{p}.canary.backend"),
                            float(ctx.number(c.get("weight"), f"{p}.canary.weight", 0.0, 1.0)),
                            ctx.string(sticky["header"], f"{p}.canary.sticky.header") if "header" in sticky else "",
                            ctx.string(sticky["cookie"], f"{p}.canary.sticky.cookie") if "cookie" in sticky else "")
        shadow = None
        if r.get("shadow") is not None:
            s = ctx.mapping(r["shadow"], f"{p}.shadow", "shadow")
            shadow = Shadow(backend_ref(s.get("backend"), f"{p}.shadow.backend"),
                            float(ctx.number(s.get("percent"), f"{p}.shadow.percent", 0.0, 100.0)),
                            ctx.methods(s["methods"], f"{p}.shadow.methods") if "methods" in s else ("GET", "HEAD"),
                            backend_ref(s["secondary"], f"{p}.shadow.secondary") if s.get("secondary") else "",
                            ctx.globs(s.get("nondeterministic", []), f"{p}.shadow.nondeterministic"))
            if shadow.backend == primary:
                ctx.fail(f"{p}.shadow.backend", "the shadow backend must differ from the route's backend")
        routes.append(Route(template, primary, methods, canary, shadow, regex))
    bh = ctx.mapping(doc.get("bulkhead") or {}, "bulkhead", "bulkhead")
    bulkhead = BulkheadConfig(int(ctx.number(bh.get("max_concurrent", 8), "bulkhead.max_concurrent", 1, 10_000, True)),
                              int(ctx.number(bh.get("max_queue", 64), "bulkhead.max_queue", 0, 1_000_000, True)),
                              int(ctx.number(bh.get("max_bytes", 64 * 1024 * 1024), "bulkhead.max_bytes", 0,
                                             2**40, True)),
                              _choice(ctx, bh.get("scope", "shadow"), "bulkhead.scope", ("shadow", "route", "gateway")))
    trust = ctx.mapping(gw.get("trust") or {}, "gateway.trust", "trust")
    secret = ""
    if "secret" in trust and "secret_env" in trust:
        ctx.fail("gateway.trust", "give either secret or secret_env, not both")
    if "secret" in trust:
        secret = ctx.string(trust["secret"], "gateway.trust.secret")
    elif "secret_env" in trust:
        env = ctx.string(trust["secret_env"], "gateway.trust.secret_env")
        secret = os.environ.get(env, "")
        if not secret:
            ctx.fail("gateway.trust.secret_env", f"the environment variable {env} is not set or empty")
    if secret and len(secret) < 16:
        ctx.fail("gateway.trust.secret", "a shared secret of at least 16 characters is required")
    peers = []
    raw_peers = trust.get("peers", [])
    if not isinstance(raw_peers, list):
        ctx.fail("gateway.trust.peers", "expected a list of IP addresses or CIDR networks")
    for i, peer in enumerate(raw_peers):
        peer = ctx.string(peer, f"gateway.trust.peers[{i}]")
        try:
            ipaddress.ip_network(peer, strict=False)
        except ValueError:
            ctx.fail(f"gateway.trust.peers[{i}]", f"expected an IP address or CIDR network, got {peer!r}")
        peers.append(peer)
    em = ctx.mapping(doc.get("emit") or {}, "emit", "emit")
    cmp_ = ctx.mapping(doc.get("comparison") or {}, "comparison", "comparison")
    return GatewayConfig(
        name=name, host=host, port=port, backends=backends, routes=tuple(routes), bulkhead=bulkhead,
        bootstrap=str(em.get("bootstrap", "")), requests_topic=str(em.get("requests_topic", "")),
        pairs_topic=str(em.get("pairs_topic", "hub.pairs")), spans_topic=str(em.get("spans_topic", "")),
        nondeterministic=ctx.globs(cmp_.get("nondeterministic", []), "comparison.nondeterministic"),
        noise_rate=float(ctx.number(cmp_.get("noise_rate", 0.01), "comparison.noise_rate", 0.0, 1.0)),
        latency_factor=float(ctx.number(cmp_.get("latency_regression_factor", 2.0),
                                        "comparison.latency_regression_factor", 1.0, 1e6)),
        latency_slack_ms=float(ctx.number(cmp_.get("latency_regression_slack_ms", 50.0),
                                          "comparison.latency_regression_slack_ms", 0.0, 1e9)),
        experiment_id=str(gw.get("experiment_id", "")),
        trust_secret=secret, trust_peers=tuple(peers), admin_host=admin_host, admin_port=admin_port,
        header_timeout_s=float(ctx.number(gw.get("header_timeout_s", 10.0), "gateway.header_timeout_s", 0.01, 3600)),
        idle_timeout_s=float(ctx.number(gw.get("idle_timeout_s", 60.0), "gateway.idle_timeout_s", 0.01, 86400)),
        shutdown_timeout_s=float(ctx.number(gw.get("shutdown_timeout_s", 10.0), "gateway.shutdown_timeout_s", 0,
                                            3600)),
        body_idle_timeout_s=float(ctx.number(gw.get("body_idle_timeout_s", 10.0), "gateway.body_idle_timeout_s",
                                             0.01, 3600)),
        body_min_rate=float(ctx.number(gw.get("body_min_rate", 1024.0), "gateway.body_min_rate", 0, 1e12)),
        max_connections=int(ctx.number(gw.get("max_connections", 1024), "gateway.max_connections", 1, 1_000_000,
                                       True)),
        server=_server(ctx, gw.get("server", "protocol")),
        compare_max_bytes=int(ctx.number(cmp_.get("max_body_bytes", 1024 * 1024), "comparison.max_body_bytes", 0,
                                         2**31, True)),
    )


SERVERS = ("protocol",)   # gateway.server: the proxy port's HTTP server (hub.gateway.server)


def _server(ctx: _Ctx, value) -> str:
    if value == "aiohttp":
        ctx.fail("gateway.server", "'aiohttp' (aiohttp's server) is no longer offered; the proxy port is served by "
                                   "'protocol' (hub.gateway.server): remove the key or set it to protocol")
    return _choice(ctx, value, "gateway.server", SERVERS)
SHADOWABLE = ("GET", "HEAD", "OPTIONS", "TRACE")   # replayed only when they carry no body or override


def config_warnings(config: GatewayConfig) -> list[str]:
    """What in a valid configuration will not do what it seems to say."""
    out = []
    for i, route in enumerate(config.routes):
        if route.shadow is None:
            continue
        never = [m for m in route.shadow.methods if m not in SHADOWABLE]
        if never:
            out.append(f"routes[{i}].shadow.methods: {', '.join(never)} {'is' if len(never) == 1 else 'are'} never "
                       f"shadowed (only {', '.join(SHADOWABLE)} without a body are replayed to a shadow)")
    return out


def load_config(path: str | Path) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GatewayConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise GatewayConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(doc, str(path))
