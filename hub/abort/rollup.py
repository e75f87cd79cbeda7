"""Per-partition partial aggregates of stored rows, sent onward keyed by experiment (``hub.rollups``).

The sink computes these from each chunk it stored, so the judge of an experiment (one worker,
whichever holds that experiment's rollup partition) sees every partition's traffic as a few
small cells per second instead of every record. Each rollup carries the chunk's token: a chunk
stored again after a crash yields the same token, and the judge counts it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import orjson

from hub.abort.measure import pair_counted, pair_mismatch, request_failed
from hub.abort.sources import kind_of
from hub.abort.sketch import QuantileSketch
from hub.otel.decode import TRACE_COLUMNS
from hub.records.request_leg import (REQ_BACKEND, REQ_CORRELATION_ID, REQ_ERROR, REQ_EVENT_TIME, REQ_EXPERIMENT_ID,
                                     REQ_GATEWAY, REQ_LATENCY_MS, REQ_LEG, REQ_ROUTE, REQ_SOURCE, REQ_STATUS)
from hub.shadow.records import PAIR_COLUMNS

_EXAMPLES = 3


@dataclass
class Cell:
    """One second of one experiment's traffic for one combination of scope values."""

    second: int
    source: str  # "requests" or "spans"
    leg: str = ""
    route: str = ""
    gateway: str = ""
    backend: str = ""
    service: str = ""
    count: int = 0
    errors: int = 0
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    examples: list[str] = field(default_factory=list)
    # custom rules (measurement count or ratio): rule name -> [rows matching, rows of the base, example ids]
    custom: dict[str, list] = field(default_factory=dict)
    # where request legs came from (hub.abort.sources: gateway, vegeta, emit); "" when not told
    kind: str = ""

    def key(self) -> tuple:
        return (self.second, self.source, self.leg, self.route, self.gateway, self.backend, self.service, self.kind)

    def to_list(self) -> list:
        tail = [self.custom, self.kind] if self.kind else ([self.custom] if self.custom else [])
        return [self.second, self.source, self.leg, self.route, self.gateway, self.backend, self.service,
                self.count, self.errors, self.sketch.to_dict(), self.examples] + tail

    @classmethod
    def from_list(cls, v: list) -> "Cell":
        return cls(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], QuantileSketch(
            {int(b): n for b, n in v[9].items()}), list(v[10]), dict(v[11]) if len(v) > 11 else {},
            str(v[12]) if len(v) > 12 else "")


def _add(cells: dict, experiment: str, key: tuple, latency_ms: float, error: bool, example: str) -> Cell:
    per = cells.setdefault(experiment, {})
    cell = per.get(key)
    if cell is None:
        second, source, leg, route, gateway, backend, service = key[:7]
        cell = per[key] = Cell(second, source, leg, route, gateway, backend, service,
                               kind=key[7] if len(key) > 7 else "")
    cell.count += 1
    cell.sketch.add(latency_ms)
    if error:
        cell.errors += 1
        if len(cell.examples) < _EXAMPLES:
            cell.examples.append(example)
    return cell


def request_cells(rows: Iterable[tuple], counters_of: Callable[[str], list] | None = None) -> dict[str, list[Cell]]:
    """Cells per experiment from ``requests`` rows (REQUEST_COLUMNS order); unplaced rows are ignored.

    ``counters_of(experiment_id)`` gives the experiment's custom rules as ``(name, numerator,
    denominator)`` predicates over a row (``hub.abort.match.counters``); each cell then also
    counts, per rule, the rows matching each.
    """
    cells: dict[str, dict] = {}
    counters: dict[str, list] = {}
    for r in rows:
        experiment = r[REQ_EXPERIMENT_ID]
        if not experiment:
            continue
        error = request_failed(r[REQ_STATUS], r[REQ_ERROR])
        key = (int(r[REQ_EVENT_TIME].timestamp()), "requests", r[REQ_LEG], r[REQ_ROUTE], r[REQ_GATEWAY],
               r[REQ_BACKEND], "", kind_of(r[REQ_SOURCE]))
        cell = _add(cells, experiment, key, r[REQ_LATENCY_MS], error, r[REQ_CORRELATION_ID])
        if counters_of is not None:
            rules = counters.get(experiment)
            if rules is None:
                rules = counters[experiment] = counters_of(experiment) or []
            for name, numerator, denominator in rules:
                counts = cell.custom.get(name)
                if counts is None:
                    counts = cell.custom[name] = [0, 0, []]
                if numerator(r):
                    counts[0] += 1
                    if len(counts[2]) < _EXAMPLES:
                        counts[2].append(r[REQ_CORRELATION_ID])
                if denominator(r):
                    counts[1] += 1
    return {e: list(per.values()) for e, per in cells.items()}


# Positions in an ``otel_traces`` row, computed once from TRACE_COLUMNS (never a number, so a change
# of the column order moves this reader with it).
_SPAN_TIME, _SPAN_TRACE_ID, _SPAN_NAME, _SPAN_SERVICE, _SPAN_DURATION, _SPAN_STATUS, _SPAN_EXPERIMENT = (
    TRACE_COLUMNS.index(name) for name in (
        "Timestamp", "TraceId", "SpanName", "ServiceName", "Duration", "StatusCode", "ExperimentId"))


def span_cells(rows: Iterable[tuple]) -> dict[str, list[Cell]]:
    """Cells per experiment from ``otel_traces`` rows (TRACE_COLUMNS order)."""
    cells: dict[str, dict] = {}
    for r in rows:
        experiment = r[_SPAN_EXPERIMENT]
        if not experiment:
            continue
        key = (r[_SPAN_TIME] // 1_000_000_000, "spans", "", r[_SPAN_NAME], "", "", r[_SPAN_SERVICE])
        _add(cells, experiment, key, r[_SPAN_DURATION] / 1e6, r[_SPAN_STATUS] == "Error", r[_SPAN_TRACE_ID])
    return {e: list(per.values()) for e, per in cells.items()}


# Positions in a ``shadow_pairs`` row, computed once from PAIR_COLUMNS.
(_PAIR_TIME, _PAIR_EXPERIMENT, _PAIR_GATEWAY, _PAIR_CORRELATION_ID, _PAIR_ROUTE, _PAIR_SHADOW_BACKEND,
 _PAIR_SHADOW_LATENCY, _PAIR_OUTCOME, _PAIR_NOISE) = (
    PAIR_COLUMNS.index(name) for name in (
        "event_time", "experiment_id", "gateway", "correlation_id", "route", "shadow_backend",
        "latency_shadow_ms", "outcome", "noise"))


def pair_cells(rows: Iterable[tuple]) -> dict[str, list[Cell]]:
    """Cells per experiment from ``shadow_pairs`` rows (PAIR_COLUMNS order): a real (not noise)
    mismatch (``hub.abort.measure.pair_mismatch``) counts as an error of the pair's route; a pair
    whose primary failed is not counted (``hub.abort.measure.pair_counted``)."""
    cells: dict[str, dict] = {}
    for r in rows:
        experiment = r[_PAIR_EXPERIMENT]
        if not experiment or not pair_counted(r[_PAIR_OUTCOME]):
            continue
        mismatch = pair_mismatch(r[_PAIR_OUTCOME], r[_PAIR_NOISE])
        key = (int(r[_PAIR_TIME].timestamp()), "pairs", "shadow", r[_PAIR_ROUTE], r[_PAIR_GATEWAY],
               r[_PAIR_SHADOW_BACKEND], "")
        _add(cells, experiment, key, float(r[_PAIR_SHADOW_LATENCY] or 0.0), mismatch, r[_PAIR_CORRELATION_ID])
    return {e: list(per.values()) for e, per in cells.items()}


def encode_rollups(token: str, cells: dict[str, list[Cell]]) -> list[tuple[bytes, bytes]]:
    """One (key, value) record per experiment for ``hub.rollups``."""
    return [(experiment.encode(), orjson.dumps({"token": token, "experiment_id": experiment,
                                                "cells": [c.to_list() for c in cell_list]}))
            for experiment, cell_list in cells.items()]


class BadRollup(ValueError):
    """A record on the rollups topic that is not a rollup (not JSON, too large or deep, wrong shape)."""


_MAX_ROLLUP_BYTES = 16 * 1024 * 1024
_ZERO_BUCKET = -(1 << 30)  # the sketch's bucket of values at or below 1 µs
_MAX_BUCKET = 20_000  # about 1e173 ms: beyond it the sketch's value of a bucket overflows
_MAX_ROLLUP_DEPTH = 8  # {"cells": [[..., {"custom": [[ids]]}]]}: five levels


def _cell(v) -> Cell:
    if not isinstance(v, list) or len(v) < 11:
        raise BadRollup("a cell is not a list of at least 11 fields")
    second, source, leg, route, gateway, backend, service, count, errors, sketch, examples = v[:11]
    if not all(isinstance(x, str) for x in (source, leg, route, gateway, backend, service)):
        raise BadRollup("a cell's scope fields are not strings")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (second, count, errors)):
        raise BadRollup("a cell's second, count or errors is not an integer")
    if not (0 <= second < 1 << 33 and 0 <= errors <= count < 1 << 53):
        raise BadRollup("a cell's second, count or errors is out of range")
    if not isinstance(sketch, dict) or not isinstance(examples, list):
        raise BadRollup("a cell's sketch or examples has the wrong type")
    try:
        buckets = {int(b): n for b, n in sketch.items()}
    except (TypeError, ValueError):
        raise BadRollup("a cell's sketch has a bucket that is not an integer") from None
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 53 for n in buckets.values()):
        raise BadRollup("a cell's sketch has a count that is not a non-negative integer")
    if not all(-_MAX_BUCKET <= b <= _MAX_BUCKET or b == _ZERO_BUCKET for b in buckets):
        raise BadRollup("a cell's sketch has a bucket out of range")
    custom = v[11] if len(v) > 11 else {}
    if not isinstance(custom, dict) or not all(
            isinstance(c, list) and len(c) >= 2 and all(isinstance(n, (int, float)) and not isinstance(n, bool)
                                                         for n in c[:2]) for c in custom.values()):
        raise BadRollup("a cell's custom counters have the wrong shape")
    kind = v[12] if len(v) > 12 else ""
    if not isinstance(kind, str) or len(kind) > 64:
        raise BadRollup("a cell's source kind is not a short string")
    return Cell(second, source, leg, route, gateway, backend, service, count, errors,
                QuantileSketch(buckets), [str(e) for e in examples], dict(custom), kind)


def decode_rollup(value: bytes) -> tuple[str, str, list[Cell]]:
    """The token, experiment and cells of a rollup; ``BadRollup`` for anything else (never another
    exception, whatever the bytes)."""
    from hub.records.decode import too_deep

    if not isinstance(value, (bytes, bytearray)) or len(value) > _MAX_ROLLUP_BYTES:
        raise BadRollup("not a rollup: empty or too large")
    if too_deep(bytes(value), _MAX_ROLLUP_DEPTH):
        raise BadRollup(f"not a rollup: nested deeper than {_MAX_ROLLUP_DEPTH} levels")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadRollup(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRollup(f"not a rollup: a JSON {type(doc).__name__}")
    token, experiment_id, cells = doc.get("token"), doc.get("experiment_id"), doc.get("cells")
    if not isinstance(token, str) or not isinstance(experiment_id, str) or not isinstance(cells, list):
        raise BadRollup("not a rollup: token, experiment_id or cells missing or of the wrong type")
    return token, experiment_id, [_cell(c) for c in cells]
