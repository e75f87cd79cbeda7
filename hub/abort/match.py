"""Custom filters of abort rules (``measurement: count`` or ``ratio``): one meaning, two forms.

A ``RecordMatch`` from the definition (``where`` / ``of``) becomes a Python predicate over a
``requests`` row (``REQUEST_COLUMNS`` order), which the sink uses to count matches into the
judge's rollups, and a ClickHouse condition over the ``requests`` table, which the generated
dashboards and Grafana alert rules use. ``tests/integration/test_abort_custom.py`` checks that
both forms count the same rows.

Every key given must hold (AND); a list holds when any of its values does (OR). ``status``
values are codes (``503``) or classes (``"5xx"``). ``failed: true`` is the hub's own notion of a
failed leg, the same as the ``error_rate`` measurement: status 0, status >= 500, or an error text.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from hub.abort.measure import REQUEST_FAILED_SQL, request_failed
from hub.records.request_leg import REQ_BACKEND as _BACKEND
from hub.records.request_leg import REQ_ERROR as _ERROR
from hub.records.request_leg import REQ_GATEWAY as _GATEWAY
from hub.records.request_leg import REQ_LATENCY_MS as _LATENCY
from hub.records.request_leg import REQ_LEG as _LEG
from hub.records.request_leg import REQ_METHOD as _METHOD
from hub.records.request_leg import REQ_ROUTE as _ROUTE
from hub.records.request_leg import REQ_STATUS as _STATUS

Predicate = Callable[[Sequence[Any]], bool]


def _status_ranges(values) -> list[tuple[int, int]]:
    ranges = []
    for v in values:
        if isinstance(v, str):  # "5xx"
            low = int(v[0]) * 100
            ranges.append((low, low + 99))
        else:
            ranges.append((int(v), int(v)))
    return ranges


def _equals(index: int, value: Any) -> Predicate:
    return lambda row: bool(row[index] == value)


def _both(first: Predicate, then: Predicate) -> Predicate:
    return lambda row: first(row) and then(row)


def failed(row: Sequence[Any]) -> bool:
    return request_failed(row[_STATUS], row[_ERROR])


def predicate(match) -> Predicate:
    """A function of a ``requests`` row; ``None`` (no filter) matches every row."""
    if match is None:
        return lambda row: True
    checks: list[Predicate] = []
    for attr, index in (("leg", _LEG), ("route", _ROUTE), ("gateway", _GATEWAY), ("backend", _BACKEND)):
        value = getattr(match, attr, None)
        if value is not None:
            checks.append(_equals(index, value))
    if getattr(match, "method", None):
        methods = frozenset(match.method)
        checks.append(lambda row: row[_METHOD] in methods)
    if getattr(match, "status", None):
        ranges = _status_ranges(match.status)
        checks.append(lambda row: any(low <= row[_STATUS] <= high for low, high in ranges))
    if getattr(match, "failed", None) is not None:
        want = bool(match.failed)
        checks.append(lambda row: failed(row) is want)
    if getattr(match, "latency_ms_over", None) is not None:
        limit = float(match.latency_ms_over)
        checks.append(lambda row: row[_LATENCY] > limit)
    if not checks:
        return lambda row: True
    if len(checks) == 1:
        return checks[0]
    return lambda row: all(check(row) for check in checks)


def _lit(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql(match) -> str:
    """The same filter as a ClickHouse condition on the ``requests`` table (``1`` for none)."""
    if match is None:
        return "1"
    parts = []
    for attr in ("leg", "route", "gateway", "backend"):
        value = getattr(match, attr, None)
        if value is not None:
            parts.append(f"{attr} = {_lit(value)}")
    if getattr(match, "method", None):
        parts.append("method IN (" + ", ".join(_lit(m) for m in match.method) + ")")
    if getattr(match, "status", None):
        ranges = _status_ranges(match.status)
        parts.append("(" + " OR ".join(f"status = {low}" if low == high else f"status BETWEEN {low} AND {high}"
                                       for low, high in ranges) + ")")
    if getattr(match, "failed", None) is not None:
        condition = REQUEST_FAILED_SQL
        parts.append(condition if match.failed else f"NOT {condition}")
    if getattr(match, "latency_ms_over", None) is not None:
        parts.append(f"latency_ms > {float(match.latency_ms_over)!r}")
    return "(" + " AND ".join(parts) + ")" if parts else "1"


def counters(conditions) -> list[tuple[str, Predicate, Predicate]]:
    """``(rule name, numerator predicate, denominator predicate)`` of each count or ratio rule.

    The numerator of a ratio counts rows that match both ``where`` and ``of``; a count's
    denominator is every row in the rollup (it is only the sample count).
    """
    out: list[tuple[str, Predicate, Predicate]] = []
    for c in conditions:
        if c.measurement not in ("count", "ratio"):
            continue
        where, of = predicate(c.where), predicate(getattr(c, "of", None))
        if c.measurement == "ratio" and getattr(c, "of", None) is not None:
            out.append((c.name, _both(of, where), of))
        else:
            out.append((c.name, where, of))
    return out
