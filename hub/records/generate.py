"""Synthetic gateway traffic: realistic request-leg records for demos, load tests and replays.

A few gateways in front of a few services; ~5% of requests go to a canary instead of the
primary; ~10% of requests (read-only ones only) are also replayed to a shadow backend under the
same correlation id; a few percent of legs fail (5xx, or status 0 for a timeout); latencies are
lognormal per route. Output is a pure function of the arguments: the same ``seed`` and
``start`` always give the same bytes (``start=None`` means traffic that ends now, which is not reproducible).
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from datetime import datetime, timezone
from itertools import accumulate
from typing import Final, Iterator

import msgspec

from hub.names import RECORD_REQUEST_LEG
from hub.records.request_leg import Leg, RequestLeg, RequestLegEvent

__all__ = ["encode_event", "generate_request_legs", "GATEWAYS", "ROUTES"]

UTC: Final = timezone.utc
_ENCODER: Final = msgspec.json.Encoder()


def encode_event(event: RequestLegEvent) -> bytes:
    """The wire bytes of an event (CloudEvents structured JSON; defaults and nulls omitted)."""
    return _ENCODER.encode(event)


# (gateway, weight)
GATEWAYS: Final = (("edge-eu-1", 45), ("edge-us-1", 40), ("internal-1", 15))

# (method, route template, backend, shadow backend or "", weight, median latency ms,
#  lognormal sigma, typical request bytes, typical response bytes)
ROUTES: Final = (
    ("GET", "/patients/{id}", "patients", "patients-v2", 30, 18.0, 0.45, 350, 2400),
    ("GET", "/patients", "patients", "patients-v2", 12, 45.0, 0.55, 380, 18000),
    ("POST", "/patients", "patients", "", 4, 60.0, 0.5, 2100, 900),
    ("GET", "/appointments/{id}", "appointments", "appointments-v2", 14, 22.0, 0.5, 340, 1600),
    ("PUT", "/appointments/{id}", "appointments", "", 5, 75.0, 0.6, 1400, 800),
    ("GET", "/search", "search", "", 10, 120.0, 0.7, 420, 9000),
    ("POST", "/auth/token", "auth", "", 8, 35.0, 0.4, 600, 1200),
    ("GET", "/health", "gateway", "", 6, 1.5, 0.3, 120, 40),
    ("DELETE", "/sessions/{id}", "auth", "", 3, 15.0, 0.4, 200, 0),
    ("GET", "/reports/{id}/pdf", "reports", "", 2, 900.0, 0.8, 300, 250000),
)

CANARY_SHARE: Final = 0.05
SHADOW_SHARE: Final = 0.10  # of all requests; only routes with a shadow backend are shadowed
SHADOW_MISMATCH: Final = 0.02  # shadow responses whose hash differs from the primary's
TIMEOUT_SHARE: Final = 0.005
SERVER_ERROR_SHARE: Final = 0.02
CLIENT_ERROR_SHARE: Final = 0.03
TIMEOUT_MS: Final = 5000.0

_SERVER_ERRORS: Final = (
    (500, "internal server error"),
    (502, "bad gateway: upstream connection reset"),
    (503, "service unavailable: no healthy upstream"),
    (504, "gateway timeout: upstream did not answer in time"),
)
_CLIENT_ERRORS: Final = ((400, ""), (401, ""), (404, ""), (409, ""), (429, "rate limited"))
_OK_STATUS: Final = {"GET": 200, "POST": 201, "PUT": 200, "DELETE": 204}

_V4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def _uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (so that it is reproducible)."""
    h = "%032x" % ((rng.getrandbits(128) & _V4_CLEAR) | _V4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_request_legs(
    count: int,
    *,
    seed: int = 0,
    experiment_id: str = "",
    start: datetime | None = None,
    rate_per_second: float = 1000.0,
) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``count`` records as ``(key, value)``: key = correlation id, value = encoded event.

    Requests arrive as a Poisson process at ``rate_per_second`` from ``start``; a shadow leg
    follows its primary directly (same key, so both land in one partition).
    """
    if count <= 0:
        return
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    rng = random.Random(seed)
    if start is None:
        # Traffic that ends now rather than starting now: generated records are never stamped
        # in the future, where a worker would wait for the experiment log to catch up.
        start = datetime.fromtimestamp(datetime.now(UTC).timestamp() - count / rate_per_second, UTC)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    ts = start.timestamp()

    gw_names = [g for g, _ in GATEWAYS]
    gw_sources = [f"/gateways/{g}" for g in gw_names]
    gw_cum = list(accumulate(w for _, w in GATEWAYS))
    gw_total = gw_cum[-1]
    rt_cum = list(accumulate(r[4] for r in ROUTES))
    rt_total = rt_cum[-1]
    shadowable = sum(r[4] for r in ROUTES if r[3]) / rt_total
    p_shadow = min(1.0, SHADOW_SHARE / shadowable)
    exp_or_none = experiment_id or None

    rand = rng.random
    lognorm = rng.lognormvariate
    getrandbits = rng.getrandbits
    from_ts = datetime.fromtimestamp
    encode = _ENCODER.encode
    leg_cls, event_cls = RequestLeg, RequestLegEvent
    log = math.log
    produced = 0
    while produced < count:
        ts += rng.expovariate(rate_per_second)
        gi = bisect(gw_cum, rand() * gw_total)
        gateway, source = gw_names[gi], gw_sources[gi]
        method, route, backend, shadow_backend, _, median, sigma, req_b, resp_b = ROUTES[
            bisect(rt_cum, rand() * rt_total)
        ]
        leg: Leg = "primary"
        if rand() < CANARY_SHARE:
            leg, backend = "canary", backend + "-canary"
        latency = lognorm(log(median), sigma)
        if leg == "canary":
            latency *= 1.15
        u = rand()
        error = ""
        if u < TIMEOUT_SHARE:
            status, latency, error = 0, TIMEOUT_MS, "upstream timeout"
            response_bytes = 0
        elif u < TIMEOUT_SHARE + SERVER_ERROR_SHARE:
            status, error = _SERVER_ERRORS[int(rand() * len(_SERVER_ERRORS))]
            response_bytes = 60 + int(rand() * 200)
        elif u < TIMEOUT_SHARE + SERVER_ERROR_SHARE + CLIENT_ERROR_SHARE:
            status, error = _CLIENT_ERRORS[int(rand() * len(_CLIENT_ERRORS))]
            response_bytes = 60 + int(rand() * 200)
        else:
            status = _OK_STATUS[method]
            response_bytes = 0 if status == 204 else int(resp_b * lognorm(0.0, 0.3))
        request_bytes = int(req_b * lognorm(0.0, 0.2))
        response_hash = "%016x" % getrandbits(64) if status else ""
        correlation_id = _uuid4(rng)
        key = correlation_id.encode()
        event_time = from_ts(round(ts, 6), UTC)
        latency = round(latency, 3)
        data = leg_cls(
            correlation_id=correlation_id, leg=leg, gateway=gateway, route=route, method=method,
            backend=backend, status=status, latency_ms=latency, event_time=event_time,
            request_bytes=request_bytes, response_bytes=response_bytes,
            response_hash=response_hash, error=error, experiment_id=experiment_id,
        )
        yield key, encode(event_cls(
            specversion="1.0", id=_uuid4(rng), source=source, type=RECORD_REQUEST_LEG, data=data,
            time=event_time, datacontenttype="application/json", experimentid=exp_or_none,
        ))
        produced += 1
        if shadow_backend and leg == "primary" and produced < count and rand() < p_shadow:
            # The gateway replays the request in the background a few milliseconds later.
            s_time = from_ts(round(ts + 0.001 + rand() * 0.02, 6), UTC)
            s_status, s_error, s_bytes, s_hash = status, error, response_bytes, response_hash
            if status and rand() < SHADOW_MISMATCH:
                s_hash = "%016x" % getrandbits(64)
            if rand() < SERVER_ERROR_SHARE:
                s_status, s_error = _SERVER_ERRORS[int(rand() * len(_SERVER_ERRORS))]
                s_bytes, s_hash = 80, "%016x" % getrandbits(64)
            shadow = leg_cls(
                correlation_id=correlation_id, leg="shadow", gateway=gateway, route=route,
                method=method, backend=shadow_backend, status=s_status,
                latency_ms=round(lognorm(log(median * 1.1), sigma), 3), event_time=s_time,
                request_bytes=request_bytes, response_bytes=s_bytes, response_hash=s_hash,
                error=s_error, experiment_id=experiment_id,
            )
            yield key, encode(event_cls(
                specversion="1.0", id=_uuid4(rng), source=source, type=RECORD_REQUEST_LEG,
                data=shadow, time=s_time, datacontenttype="application/json",
                experimentid=exp_or_none,
            ))
            produced += 1
