"""Places records on their experiment and phase: explicitly by id, or by target and time window.

A record names its experiment explicitly (an ``experiment.id`` attribute, header or baggage
entry, carried into the row) or it is matched: an experiment claims a record when one of the
record's gateway, route, backend or service is among the experiment's targets and the record's
event time falls inside the experiment's run ``[started, ended)``. When several running
experiments claim one record (overlapping targets), the one started last wins, so a narrower
experiment started inside a broader one gets its own traffic. The phase is the experiment's
phase at the record's event time, from the timeline, whatever order things arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

from hub.experiments.lifecycle import ExperimentState, phase_at
from hub.otel.decode import TRACE_COLUMNS
from hub.records.request_leg import (REQ_BACKEND, REQ_EVENT_TIME, REQ_EXPERIMENT_ID, REQ_GATEWAY, REQ_PHASE,
                                     REQ_ROUTE)
from hub.shadow.records import PAIR_COLUMNS

UTC = timezone.utc
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    experiment_id: str
    start: datetime
    end: datetime
    state: ExperimentState


class TargetIndex:
    """Experiments by target value, for matching many records quickly."""

    def __init__(self, states: Iterable[ExperimentState]):
        self.by_id: dict[str, ExperimentState] = {}
        self.by_target: dict[tuple[str, str], list[Window]] = {}
        for state in states:
            self.by_id[state.id] = state
            if state.started_at is None:
                continue
            window = Window(state.id, state.started_at, state.ended_at or _FAR_FUTURE, state)
            targets = state.definition.targets
            for kind in ("gateways", "routes", "backends", "services"):
                for value in getattr(targets, kind):
                    self.by_target.setdefault((kind, value), []).append(window)
        for windows in self.by_target.values():
            windows.sort(key=lambda w: (w.start, w.experiment_id), reverse=True)

    def match(self, t: datetime, candidates: Sequence[tuple[str, str]]) -> Window | None:
        best: Window | None = None
        for key in candidates:
            for window in self.by_target.get(key, ()):
                if window.start <= t < window.end:
                    if best is None or (window.start, window.experiment_id) > (best.start, best.experiment_id):
                        best = window
                    break  # windows are sorted newest first
        return best

    def place(self, t: datetime, experiment_id: str, phase: str,
              candidates: Sequence[tuple[str, str]]) -> tuple[str, str]:
        """(experiment id, phase) of a record at event time ``t``."""
        if experiment_id:
            if phase:
                return experiment_id, phase
            state = self.by_id.get(experiment_id)
            return experiment_id, (phase_at(state, t) if state is not None else "")
        window = self.match(t, candidates)
        if window is None:
            return "", phase
        return window.experiment_id, phase or phase_at(window.state, t)


def _placed(row: tuple, experiment: int, experiment_id: str, phase_column: int, phase: str) -> tuple:
    """``row`` with ``experiment_id`` and ``phase`` at their columns' positions, wherever those are."""
    out = list(row)
    out[experiment], out[phase_column] = experiment_id, phase
    return tuple(out)


# Positions of the fields correlation reads and writes in a ``requests`` row.
_REQ_TIME, _REQ_EXPERIMENT, _REQ_PHASE = REQ_EVENT_TIME, REQ_EXPERIMENT_ID, REQ_PHASE
_REQ_GATEWAY, _REQ_ROUTE, _REQ_BACKEND = REQ_GATEWAY, REQ_ROUTE, REQ_BACKEND


def correlate_request_rows(index: TargetIndex, rows: list[tuple]) -> list[tuple]:
    """Fill experiment id and phase of ``requests`` rows (REQUEST_COLUMNS order)."""
    if not index.by_id:
        return rows
    out = []
    # The windows a (gateway, route, backend) can fall in, newest first, once per batch: the same
    # answer ``TargetIndex.match`` gives (the first window that holds the time is the best).
    candidates: dict[tuple[str, str, str], list[Window]] = {}
    by_target = index.by_target
    for row in rows:
        if row[_REQ_EXPERIMENT]:
            experiment_id, phase = index.place(row[_REQ_TIME], row[_REQ_EXPERIMENT], row[_REQ_PHASE], ())
        else:
            key = (row[_REQ_GATEWAY], row[_REQ_ROUTE], row[_REQ_BACKEND])
            windows = candidates.get(key)
            if windows is None:
                windows = sorted({id(w): w for k in (("gateways", key[0]), ("routes", key[1]), ("backends", key[2]))
                                  for w in by_target.get(k, ())}.values(),
                                 key=lambda w: (w.start, w.experiment_id), reverse=True)
                candidates[key] = windows
            t = row[_REQ_TIME]
            experiment_id, phase = "", row[_REQ_PHASE]
            for window in windows:
                if window.start <= t < window.end:
                    experiment_id, phase = window.experiment_id, phase or phase_at(window.state, t)
                    break
        if experiment_id != row[_REQ_EXPERIMENT] or phase != row[_REQ_PHASE]:
            row = _placed(row, _REQ_EXPERIMENT, experiment_id, _REQ_PHASE, phase)
        out.append(row)
    return out


# Positions in an ``otel_traces`` row (TRACE_COLUMNS order): Timestamp (ns), ServiceName and the
# experiment columns.
_SPAN_TIME, _SPAN_SERVICE, _SPAN_EXPERIMENT, _SPAN_PHASE = (
    TRACE_COLUMNS.index(name) for name in ("Timestamp", "ServiceName", "ExperimentId", "ExperimentPhase"))


def correlate_span_rows(index: TargetIndex, rows: list[tuple]) -> list[tuple]:
    """Fill ExperimentId and ExperimentPhase of ``otel_traces`` rows by service and time."""
    if not index.by_id:
        return rows
    out = []
    for row in rows:
        t = datetime.fromtimestamp(row[_SPAN_TIME] / 1e9, tz=UTC)
        experiment_id, phase = index.place(t, row[_SPAN_EXPERIMENT], row[_SPAN_PHASE], (("services", row[_SPAN_SERVICE]),))
        if experiment_id != row[_SPAN_EXPERIMENT] or phase != row[_SPAN_PHASE]:
            row = _placed(row, _SPAN_EXPERIMENT, experiment_id, _SPAN_PHASE, phase)
        out.append(row)
    return out


# Positions in a ``shadow_pairs`` row (PAIR_COLUMNS order).
_PAIR_TIME, _PAIR_EXPERIMENT, _PAIR_PHASE, _PAIR_GATEWAY, _PAIR_ROUTE, _PAIR_BACKEND = (
    PAIR_COLUMNS.index(name) for name in ("event_time", "experiment_id", "phase", "gateway", "route", "primary_backend"))


def correlate_pair_rows(index: TargetIndex, rows: list[tuple]) -> list[tuple]:
    """Fill experiment id and phase of ``shadow_pairs`` rows like their primary legs'."""
    if not index.by_id:
        return rows
    out = []
    for row in rows:
        experiment_id, phase = index.place(
            row[_PAIR_TIME], row[_PAIR_EXPERIMENT], row[_PAIR_PHASE],
            (("gateways", row[_PAIR_GATEWAY]), ("routes", row[_PAIR_ROUTE]), ("backends", row[_PAIR_BACKEND])),
        )
        if experiment_id != row[_PAIR_EXPERIMENT] or phase != row[_PAIR_PHASE]:
            row = _placed(row, _PAIR_EXPERIMENT, experiment_id, _PAIR_PHASE, phase)
        out.append(row)
    return out
