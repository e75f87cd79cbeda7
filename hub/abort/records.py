"""Alert records from ``hub.alerts`` as ``alerts`` rows.

An alert record is a JSON object (``AlertRecord``): the judge's alerts (``kind`` ``alert``) and the
outcome of each action taken on them (``kind`` ``action``). Every field is checked against what its
column in ``schemas/clickhouse/0006_alerts.sql`` holds, so a record the decoder accepts is a row the
store accepts; anything else (empty, oversized, too deeply nested, not JSON, a wrong type, an unknown
``kind``, a value out of its column's range, a timestamp outside the window) becomes an
``InvalidRecord`` with the reason, and the records around it still decode. Fields the table has no
column for are ignored; ``null`` is taken as absent. NaN and infinities are kept in the float columns
(``threshold``, ``observed``), which hold them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal, Sequence

import msgspec
import orjson

from hub.errors import InvalidRecord
from hub.records.decode import COLUMN_RANGE, DecodedBatch, Limits, RawMessage, TimeWindow, depth_reason, too_deep

ALERT_COLUMNS = ("time", "kind", "alert_id", "status", "experiment_id", "rule", "severity", "measurement",
                 "comparison", "threshold", "observed", "samples", "window_start", "window_end",
                 "top_contributors", "example_request_ids", "message", "action", "url", "ok", "status_code",
                 "attempts", "error", "outside_run", "latency_ms")

UTC = dt.timezone.utc
UInt64 = Annotated[int, msgspec.Meta(ge=0)]  # and <= 2**64 - 1, checked in alert_row
UInt16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]
UInt8 = Annotated[int, msgspec.Meta(ge=0, le=255)]


class AlertRecord(msgspec.Struct, gc=False):
    """One record of ``hub.alerts``; times are ISO 8601 strings (an offset-less one is UTC)."""

    time: str
    kind: Literal["alert", "action"]
    experiment_id: str
    alert_id: str | None = None
    status: str | None = None
    rule: str | None = None
    severity: str | None = None
    measurement: str | None = None
    comparison: str | None = None
    threshold: float | None = None
    observed: float | None = None
    samples: UInt64 | None = None
    window_start: str | None = None
    window_end: str | None = None
    top_contributors: Any = None
    example_request_ids: list[str] | None = None
    message: str | None = None
    action: str | None = None
    url: str | None = None
    ok: bool | None = None
    status_code: UInt16 | None = None
    attempts: UInt8 | None = None
    error: str | None = None
    outside_run: bool | None = None
    latency_ms: float | None = None


class _Refused(Exception):
    pass


def _time(value: str | None, name: str, window: TimeWindow, required: bool = False):
    if not value:
        if required:
            raise _Refused(f"schema: {name} is empty")
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Refused(f"schema: {name} is not an ISO 8601 time ({value[:40]!r})") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    try:
        t = t.astimezone(UTC)
    except OverflowError:
        raise _Refused(window.reason(f"{name} {value[:40]}")) from None
    if not window.lo <= t <= window.hi:
        raise _Refused(window.reason_at(f"{name} {value[:40]}", t))
    return t


def alert_row(r: dict, window: TimeWindow | None = None) -> tuple:
    """An ``alerts`` row (``ALERT_COLUMNS`` order) of a record; raises ``ValueError`` when it is not one.

    Times must lie in ``window`` (default: anything the column holds)."""
    window = window if window is not None else COLUMN_RANGE
    try:
        a = msgspec.convert(r, AlertRecord)
        orjson.dumps(r)  # refuses strings the store cannot encode (lone surrogates)
    except (msgspec.ValidationError, orjson.JSONEncodeError, TypeError) as exc:
        raise ValueError("schema: " + str(exc).replace("`", "")[:240]) from None
    if a.samples is not None and a.samples > 2**64 - 1:
        raise ValueError(f"schema: samples {a.samples} does not fit UInt64")
    try:
        time = _time(a.time, "time", window, required=True)
        window_start = _time(a.window_start, "window_start", window)
        window_end = _time(a.window_end, "window_end", window)
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    values = {
        "time": time, "kind": a.kind, "alert_id": a.alert_id or "", "status": a.status or "",
        "experiment_id": a.experiment_id, "rule": a.rule or "", "severity": a.severity or "",
        "measurement": a.measurement or "", "comparison": a.comparison or "",
        "threshold": a.threshold if a.threshold is not None else 0.0, "observed": a.observed,
        "samples": a.samples or 0, "window_start": window_start, "window_end": window_end,
        "top_contributors": json.dumps(a.top_contributors if a.top_contributors is not None else []),
        "example_request_ids": list(a.example_request_ids or ()), "message": a.message or "",
        "action": a.action or "", "url": a.url or "", "ok": a.ok, "status_code": a.status_code,
        "attempts": a.attempts or 0, "error": a.error or "", "outside_run": bool(a.outside_run),
        "latency_ms": a.latency_ms,
    }
    return tuple(values[column] for column in ALERT_COLUMNS)  # by name: the constant's order rules


def decode_alerts(messages: Sequence[RawMessage], max_bytes: int, limits: Limits | None = None,
                  now: float | None = None) -> DecodedBatch:
    """``alerts`` rows (``ALERT_COLUMNS`` order) from alert records; never raises for a bad record."""
    window = TimeWindow.of(limits, now) if limits is not None else COLUMN_RANGE  # without limits: the column's
    limits = limits if limits is not None else Limits(max_bytes)
    max_bytes = min(max_bytes, limits.max_bytes)
    rows, invalid, sources = [], [], []
    for m in messages:
        value = m.value
        if not value:
            invalid.append(InvalidRecord("empty value", m.topic, m.partition, m.offset))
            continue
        if len(value) > max_bytes:
            invalid.append(InvalidRecord(f"oversized: {len(value)} bytes > {max_bytes}",
                                         m.topic, m.partition, m.offset))
            continue
        if too_deep(value, limits.max_depth):
            invalid.append(InvalidRecord(depth_reason(limits.max_depth), m.topic, m.partition, m.offset))
            continue
        try:
            doc = json.loads(value)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            invalid.append(InvalidRecord(f"not JSON: {str(exc)[:200]}", m.topic, m.partition, m.offset))
            continue
        if not isinstance(doc, dict):
            invalid.append(InvalidRecord(f"schema: not an alert record (a JSON {type(doc).__name__})",
                                         m.topic, m.partition, m.offset))
            continue
        try:
            rows.append(alert_row(doc, window))
        except (ValueError, RecursionError) as exc:
            invalid.append(InvalidRecord(str(exc), m.topic, m.partition, m.offset))
            continue
        sources.append((m.offset, -1))
    return DecodedBatch(rows, invalid, sources)
