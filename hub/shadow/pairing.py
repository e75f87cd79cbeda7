"""The pairing join: primary and shadow legs of one request, out of order, within a window.

Legs are joined by ``(gateway, correlation_id)``. A pair is made as soon as the primary and the
shadow leg (and the secondary leg, when secondaries are configured) have arrived, in any order.
Time is event time: the watermark of a ``PairingWindow`` is the newest ``event_time`` it has
seen, and an entry whose first leg is older than ``watermark - window`` expires:

- primary and shadow, no secondary: a pair without the secondary's noise evidence;
- primary only, shadow expected (``expect_shadow``): outcome ``shadow_missing``;
- primary only, shadow not expected (the request was not selected for shadowing): nothing;
- shadow only: counted as an orphan (``stats['orphan_shadows']``), no pair invented.

Memory is bounded by the requests in flight: an entry lives at most ``window`` of event time,
and the keys of recently made pairs are remembered for another ``window`` so that a redelivered
leg cannot start a second pair. Legs older than the watermark minus the window are counted as
``late`` and dropped.

``make_pair`` holds the outcome rules, shared with the gateway (which compares bodies itself and
passes the differing JSON fields): ``dropped_by_bulkhead`` > ``primary_failed`` (the primary gave
no answer, 5xx or an error: the pair says nothing about the shadow version) > ``shadow_error`` >
``status_mismatch`` > ``body_mismatch`` (differences left after the noise model) >
``latency_regression`` > ``match``. A status mismatch (or a failed primary) is never noise: its body
differences are all reported as real, except fields the configuration declares nondeterministic,
which are always noise fields. The noise model
learns from a secondary leg only when primary and secondary both succeeded with the same status
(``hub.shadow.noise.clean_comparison``).

``PairingAgent`` is what the requests sink's ``after_store`` hook calls with each stored chunk
(rows in ``REQUEST_COLUMNS`` order, one partition, offset order); it returns ``(key, value)``
records for the pairs topic. Legs whose envelope ``source`` starts with ``/hub-gateway/`` are
skipped: the hub's own gateway pairs in-process, where it can compare bodies field by field. The
worker publishes those records with ``batch_by_partition``: the pairs of a chunk that fall on one
partition of the pairs topic (by their correlation-id key, as the default partitioner places a
single record) travel as one CloudEvents batch record, so the pairs sink reads a few records per
chunk of legs instead of one record per pair.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence, overload

import msgspec
from kafka.partitioner.default import murmur2

from hub.abort.measure import request_failed
from hub.records.request_leg import (REQ_BACKEND, REQ_CORRELATION_ID, REQ_ERROR, REQ_EVENT_ID, REQ_EVENT_TIME,
                                     REQ_EXPERIMENT_ID,
                                     REQ_GATEWAY, REQ_LATENCY_MS, REQ_LEG, REQ_METHOD, REQ_PHASE, REQ_RESPONSE_HASH,
                                     REQ_ROUTE, REQ_SOURCE, REQ_STATUS)
from hub.shadow.noise import WHOLE_BODY, NoiseModel
from hub.shadow.records import Outcome, ShadowPair, encode_pair

__all__ = ["DROPPED_BY_BULKHEAD", "LegView", "PairPolicy", "make_pair", "PairingWindow", "PairingAgent",
           "GATEWAY_SOURCE_PREFIX", "batch_by_partition"]

#: The ``error`` of a shadow leg the gateway's bulkhead dropped (status 0, latency 0).
DROPPED_BY_BULKHEAD = "dropped by bulkhead"
#: Envelope ``source`` prefix of the hub gateway's legs (it emits its own pairs).
GATEWAY_SOURCE_PREFIX = "/hub-gateway/"
UTC = timezone.utc


@dataclass(slots=True)
class LegView:
    """The fields of a request leg that pairing needs."""

    correlation_id: str
    leg: str
    gateway: str
    route: str
    method: str
    backend: str
    status: int
    latency_ms: float
    event_time: datetime
    response_hash: str = ""
    error: str = ""
    experiment_id: str = ""
    phase: str = ""
    source: str = ""

    @classmethod
    def from_row(cls, r: Sequence) -> "LegView":
        """From a ``requests`` row in ``REQUEST_COLUMNS`` order."""
        return cls(r[REQ_CORRELATION_ID], r[REQ_LEG], r[REQ_GATEWAY], r[REQ_ROUTE], r[REQ_METHOD], r[REQ_BACKEND],
                   r[REQ_STATUS], r[REQ_LATENCY_MS], r[REQ_EVENT_TIME], r[REQ_RESPONSE_HASH], r[REQ_ERROR],
                   r[REQ_EXPERIMENT_ID], r[REQ_PHASE], r[REQ_SOURCE])


@dataclass(frozen=True)
class PairPolicy:
    """When a shadow is a latency regression: slower than ``factor`` x primary + ``slack_ms``."""

    latency_factor: float = 2.0
    latency_slack_ms: float = 50.0


def primary_failed(status: int, error: str) -> bool:
    """Whether the primary failed (no answer, 5xx or an error): its pair says nothing about the
    shadow version. The same as a failed request leg (``hub.abort.measure.request_failed``)."""
    return request_failed(status, error)


def make_pair(primary: LegView, shadow: LegView | None, *, secondary: LegView | None = None,
              differing: Sequence[str] | None = None, noise: NoiseModel | None = None,
              policy: PairPolicy = PairPolicy()) -> ShadowPair:
    """The pair of one request. ``differing``: field paths where the bodies differ (None: compare
    ``response_hash``). With a secondary and no ``differing``, the secondary's hash comparison
    is fed to the noise model first (whole-body evidence)."""
    common: dict[str, Any] = dict(correlation_id=primary.correlation_id, gateway=primary.gateway, route=primary.route,
                  method=primary.method, primary_backend=primary.backend, event_time=primary.event_time,
                  primary_status=primary.status, latency_primary_ms=float(primary.latency_ms),
                  experiment_id=primary.experiment_id, phase=primary.phase)
    if shadow is None:
        return ShadowPair(outcome="shadow_missing", **common)
    common.update(shadow_backend=shadow.backend, shadow_status=shadow.status, shadow_error=shadow.error,
                  latency_shadow_ms=float(shadow.latency_ms))
    if secondary is not None:
        common.update(secondary_backend=secondary.backend, secondary_status=secondary.status)
    if shadow.error.startswith(DROPPED_BY_BULKHEAD):
        return ShadowPair(outcome="dropped_by_bulkhead", **common)
    failed = primary_failed(primary.status, primary.error)
    if not failed and (shadow.status == 0 or shadow.error):
        return ShadowPair(outcome="shadow_error", **common)
    if differing is None:
        differing = [WHOLE_BODY] if shadow.response_hash != primary.response_hash else []
        if noise is not None and secondary is not None and not secondary.error:
            noise.observe_secondary(primary.route,
                                    [WHOLE_BODY] if secondary.response_hash != primary.response_hash else [],
                                    primary_status=primary.status, secondary_status=secondary.status)
    status_match = shadow.status == primary.status
    if noise is not None and differing and status_match and not failed:
        classified = noise.classify(primary.route, differing)
        real, noisy = classified.real, classified.noise
    elif noise is not None and differing:
        # a status difference (or a failed primary) is never noise, nor are the body differences
        # that come with it, except the fields the configuration declares nondeterministic
        real = sorted(f for f in differing if not noise.is_declared(primary.route, f))
        noisy = sorted(f for f in differing if noise.is_declared(primary.route, f))
    else:
        real, noisy = sorted(differing), []
    diff = float(shadow.latency_ms) - float(primary.latency_ms)
    outcome: Outcome
    if failed:
        outcome = "primary_failed"
    elif not status_match:
        outcome = "status_mismatch"
    elif real:
        outcome = "body_mismatch"
    elif shadow.latency_ms > policy.latency_factor * primary.latency_ms + policy.latency_slack_ms:
        outcome = "latency_regression"
    else:
        outcome = "match"
    return ShadowPair(outcome=outcome, status_match=status_match, body_match=not differing, latency_diff_ms=diff,
                      noise=status_match and not failed and bool(differing) and not real, differing_fields=list(real),
                      noise_fields=list(noisy), **common)


def _NEVER(leg: LegView) -> bool:
    return False


@overload
def _view(leg: None) -> None: ...
@overload
def _view(leg: LegView | bytes | Sequence) -> LegView: ...
def _view(leg):
    """A held leg as a ``LegView`` (``add_row`` holds ``requests`` rows encoded, see ``_hold``; a
    row that completes its pair on arrival is read as it came)."""
    if leg is None or isinstance(leg, LegView):
        return leg
    if not isinstance(leg, bytes):  # a row that completed its pair as it came
        return LegView.from_row(leg)
    fields = _HELD_DECODER.decode(leg)
    fields.insert(REQ_EVENT_ID, None)
    fields[REQ_EVENT_TIME] = datetime.fromisoformat(fields[REQ_EVENT_TIME])
    return LegView.from_row(fields)


# msgspec returns its output in a buffer of the encoded size; orjson's keeps the 4 KiB it
# started with, twenty times a held row's ~200 bytes (about 100 MB for a window of 26,000 legs).
_HELD_ENCODER = msgspec.json.Encoder()
_HELD_DECODER = msgspec.json.Decoder()


def _hold(row: Sequence) -> bytes:
    """A ``requests`` row as the window holds it: its fields but the event id, as JSON bytes."""
    return _HELD_ENCODER.encode(row[:REQ_EVENT_ID] + row[REQ_EVENT_ID + 1:])  # type: ignore[operator]  # a tuple or a list


#: Joins gateway and correlation id into a request's key (it sorts as the pair of them would).
_SEP = "\x1f"


class _Expiry:
    """Keys ordered by a time, oldest first: a heap of the distinct times, and per time its key or
    (when several share it) a list of keys."""

    __slots__ = ("_heap", "_at")

    def __init__(self) -> None:
        self._heap: list[float] = []
        self._at: dict[float, object] = {}

    def push(self, t: float, key: str) -> None:
        held = self._at.get(t)
        if held is None:
            self._at[t] = key
            heapq.heappush(self._heap, t)
        elif type(held) is list:
            held.append(key)
        else:
            self._at[t] = [held, key]

    def pop_before(self, horizon: float):
        """``(time, key)`` of every key older than ``horizon``, oldest first (keys of one time in order)."""
        heap, at = self._heap, self._at
        while heap and heap[0] < horizon:
            t = heapq.heappop(heap)
            held = at.pop(t)
            if type(held) is list:
                for key in sorted(held):
                    yield t, key
            else:
                yield t, held

    def clear(self) -> None:
        self._heap.clear()
        self._at.clear()


# What the window holds per request, all of it objects the garbage collector never tracks:
# ``_first[key]`` (the time of its first leg), ``_expect[key]`` when a shadow is expected or not,
# the legs that have arrived in ``_primary``, ``_shadow`` and ``_secondary`` (key -> leg; a row
# from ``add_row`` is held as JSON bytes, see ``_hold``), and the expiry order (floats, and per
# time a key string). A worker's windows hold hundreds of thousands of legs and turn them over
# at a steady rate; tuples held there would stay tracked (young collections stop when objects are
# freed as fast as they are made) and a later collection would scan them all, a pause of about a
# second at 10,000 legs/s.


class PairingWindow:
    """A windowed join of legs by ``(gateway, correlation_id)``; see the module docstring."""

    def __init__(self, window_s: float = 30.0, *, policy: PairPolicy = PairPolicy(),
                 noise: NoiseModel | None = None, secondary_backends: Iterable[str] = (),
                 expect_shadow: Callable[[LegView], bool] | None = None):
        self.window = float(window_s)
        self.policy = policy
        self.noise = noise
        self.secondaries = frozenset(secondary_backends)
        self.expect_shadow = expect_shadow or _NEVER
        self.watermark = float("-inf")
        self._first: dict[str, float] = {}
        self._expect: dict[str, bool] = {}
        self._primary: dict[str, object] = {}
        self._shadow: dict[str, object] = {}
        self._secondary: dict[str, object] = {}
        self._expiry = _Expiry()
        self._done: dict[str, float] = {}
        self._done_expiry = _Expiry()
        self.stats = {"legs": 0, "pairs": 0, "shadow_missing": 0, "unshadowed": 0, "orphan_shadows": 0,
                      "late": 0, "duplicates": 0, "ignored": 0}

    @property
    def pending(self) -> int:
        """Requests held now (waiting for a leg), plus keys of recent pairs remembered."""
        return len(self._first) + len(self._done)

    def add(self, leg: LegView, expect_shadow: bool | None = None) -> list[ShadowPair]:
        """Take one leg; returns the pairs it completed and those that expired as the watermark moved."""
        self.stats["legs"] += 1
        if leg.leg not in ("primary", "shadow"):
            self.stats["ignored"] += 1
            return []
        return self._add(leg, leg.leg, leg.event_time.timestamp(), leg.gateway + _SEP + leg.correlation_id,
                         leg.backend, expect_shadow)

    def add_row(self, row: Sequence) -> list[ShadowPair]:
        """``add`` for a ``requests`` row (``REQUEST_COLUMNS`` order). The row is held encoded and
        becomes a ``LegView`` only when its pair is made: most primary legs are never shadowed,
        and this keeps their cost to a few dictionary entries."""
        self.stats["legs"] += 1
        kind = row[REQ_LEG]
        if kind != "primary" and kind != "shadow":
            self.stats["ignored"] += 1
            return []
        return self._add(row, kind, row[REQ_EVENT_TIME].timestamp(), row[REQ_GATEWAY] + _SEP + row[REQ_CORRELATION_ID],
                         row[REQ_BACKEND], None)

    def _add(self, leg, kind: str, t: float, key: str, backend: str,
             expect_shadow: bool | None) -> list[ShadowPair]:
        """``leg``: a ``LegView``, or a ``requests`` row (held encoded)."""
        out: list[ShadowPair] = []
        if t > self.watermark:
            self.watermark = t
            out.extend(self._expire(self.watermark - self.window))
        if key in self._done:
            self.stats["duplicates"] += 1
            return out
        if key not in self._first:
            if t < self.watermark - self.window:
                self.stats["late"] += 1
                return out
            self._first[key] = t
            self._expiry.push(t, key)
        # The leg is held as it came until it is known whether it completes its pair now; a leg
        # that stays in the window is then held encoded (``_hold``).
        if kind == "primary":
            if key in self._primary:
                self.stats["duplicates"] += 1
                return out
            held = self._primary
            held[key] = leg
            if expect_shadow is None and self.expect_shadow is not _NEVER:
                expect_shadow = self.expect_shadow(_view(leg))
            if expect_shadow is not None:
                self._expect[key] = bool(expect_shadow)
        elif backend in self.secondaries:
            held = self._secondary
            held[key] = leg
        else:
            if key in self._shadow:
                self.stats["duplicates"] += 1
                return out
            held = self._shadow
            held[key] = leg
        if key in self._primary and key in self._shadow and (not self.secondaries or key in self._secondary):
            out.append(self._close(key))
        elif type(leg) is not LegView:
            held[key] = _hold(leg)
        return out

    def _drop(self, key) -> tuple:
        """Forget a request; returns its (first, expect, primary, shadow, secondary)."""
        return (self._first.pop(key), self._expect.pop(key, False), self._primary.pop(key, None),
                self._shadow.pop(key, None), self._secondary.pop(key, None))

    def _close(self, key) -> ShadowPair:
        first, _, primary, shadow, secondary = self._drop(key)
        self._done[key] = first
        self._done_expiry.push(first, key)
        self.stats["pairs"] += 1
        return make_pair(_view(primary), _view(shadow), secondary=_view(secondary),
                         noise=self.noise, policy=self.policy)

    def _expire(self, horizon: float) -> list[ShadowPair]:
        out = []
        first_of = self._first
        for t, key in self._expiry.pop_before(horizon):
            if first_of.get(key) != t:
                continue  # paired already (or held again since, under its new time)
            if key in self._primary and key in self._shadow:
                out.append(self._close(key))
                continue
            _, expect, primary, _, _ = self._drop(key)
            if primary is not None:
                if expect:
                    self.stats["shadow_missing"] += 1
                    out.append(make_pair(_view(primary), None, policy=self.policy))
                else:
                    self.stats["unshadowed"] += 1
            else:
                self.stats["orphan_shadows"] += 1
        done = self._done
        for t, key in self._done_expiry.pop_before(horizon - self.window):
            if done.get(key) == t:
                del done[key]
        return out

    def flush(self) -> list[ShadowPair]:
        """Expire everything (shutdown, end of a replay)."""
        out = self._expire(float("inf"))
        self._done.clear()
        self._done_expiry.clear()
        return out


class PairingAgent:
    """Per-partition pairing of stored ``requests`` chunks, for the requests sink's ``after_store``."""

    def __init__(self, window_s: float = 30.0, *, source: str = "/hub/pairing",
                 skip_source_prefix: str = GATEWAY_SOURCE_PREFIX, **window_options):
        self.window_s = window_s
        self.source = source
        self.skip = skip_source_prefix
        self.options = window_options
        self.windows: dict[int, PairingWindow] = {}
        self._last: dict[int, int] = {}

    def window(self, partition: int) -> PairingWindow:
        w = self.windows.get(partition)
        if w is None:
            w = self.windows[partition] = PairingWindow(self.window_s, **self.options)
        return w

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.windows.pop(p, None)
            self._last.pop(p, None)

    def pairs(self, token: str, rows: Iterable[Sequence]) -> list[ShadowPair]:
        """Pairs completed by a stored chunk; a chunk seen before (same token, re-stored) adds nothing."""
        _, _, partition_s, offsets = token.rsplit(":", 3)
        partition, last = int(partition_s), int(offsets.rsplit("-", 1)[1])
        if self._last.get(partition, -1) >= last:
            return []
        self._last[partition] = last
        w = self.window(partition)
        out: list[ShadowPair] = []
        skip = self.skip
        add = w.add_row
        for r in rows:
            if skip and r[REQ_SOURCE].startswith(skip):
                continue
            made = add(r)
            if made:
                out.extend(made)
        return out

    def after_store(self, token: str, decoded) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` records for the pairs topic, keyed by correlation id."""
        return [(p.correlation_id.encode(), encode_pair(p, self.source)) for p in self.pairs(token, decoded.rows)]


#: The largest CloudEvents batch record ``batch_by_partition`` makes (a pair event is ~700 bytes).
BATCH_BYTES = 256 * 1024


def batch_by_partition(records: Sequence[tuple[bytes, bytes]], partitions: Sequence[int],
                       max_bytes: int = BATCH_BYTES) -> list[tuple]:
    """``(key, value)`` records (each value one CloudEvent) as ``(key, batch, partition)``: the
    events whose key the default partitioner (murmur2, as Kafka's Java client and aiokafka) puts
    on one of ``partitions`` are sent together as CloudEvents batch records
    (``application/cloudevents-batch+json``, a JSON array) of at most ``max_bytes`` (or one
    event), keyed by their first event's key and sent to that partition explicitly. Without
    ``partitions`` the records are returned as they are.

    Every event lands on the partition its own key would have picked, so all publications of a
    pair still share a partition (what ``hub.shadow.dedupe`` relies on), and the pairs sink
    reads a few records per chunk instead of one per pair.
    """
    if not records or not partitions:
        return list(records)  # partitions unknown: each event on its own, as its key picks
    ordered = sorted(partitions)
    n = len(ordered)
    grouped: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in records:
        grouped.setdefault(ordered[(murmur2(key) & 0x7FFFFFFF) % n], []).append((key, value))
    out = []
    for partition, group in grouped.items():
        start, size = 0, 2
        for i, (_, value) in enumerate(group):
            if i > start and size + len(value) + 1 > max_bytes:
                out.append((group[start][0], b"[" + b",".join(v for _, v in group[start:i]) + b"]", partition))
                start, size = i, 2
            size += len(value) + 1
        out.append((group[start][0], b"[" + b",".join(v for _, v in group[start:]) + b"]", partition))
    return out
