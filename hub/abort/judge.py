"""The abort judge: evaluates each experiment's abort conditions over event-time windows of rollups.

Determinism is what makes it trustworthy across restarts. The judge of an experiment changes
state only when a rollup arrives (and, for absence rules, on a clock tick), and rollups of one
experiment share a partition, so the sequence of evaluations is the sequence of the log. A
restarted judge replays its partitions' recent rollups in log order and reaches the same
decisions with the same alert ids; alerts already on ``hub.alerts`` are not raised again.
A rollup seen twice (a chunk stored again after a crash) is counted once, by its token and its
experiment: one chunk holding several experiments' rows yields one rollup per experiment, all with
the chunk's token, and each of them counts.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterable

# What a rule measures is defined in hub.abort.measure (also compiled to the dashboards' SQL).
from hub.abort.measure import Measured, matches as _matches, normal_sf, source_of, two_proportion_p_value  # noqa: F401
from hub.abort.measure import evaluate as measure
from hub.abort.rollup import Cell, decode_rollup
from hub.experiments.definition import parse_duration

log = logging.getLogger(__name__)

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _iso(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.timezone.utc).isoformat()


@dataclass
class RuleState:
    breach_since: int | None = None
    last_breach: int | None = None  # the latest second evaluated as breaching, while the breach lasts
    firing: str | None = None  # alert id while firing
    value: float | None = None
    samples: int = 0
    evaluated_at: int | None = None
    detail: str = ""


class ExperimentJudge:
    """Windows and rule states of one experiment."""

    def __init__(self, experiment_id: str, conditions: list, idle: float = 5.0):
        self.experiment_id = experiment_id
        self.conditions = [c for c in conditions]
        self.cells: dict[int, list[Cell]] = {}
        self.watermark = 0
        self.last_seen: dict[str, int] = {}
        self.states = {c.name: RuleState() for c in self.conditions}
        # Inputs (one sink's partition each) deliver their seconds at their own pace. A breach may
        # resolve only at a second every live input of the rule's source has delivered; an input
        # more than ``idle`` seconds behind the newest second of its source counts as idle.
        self.idle = idle
        self.progress: dict[tuple[str, str], int] = {}  # (source, input) -> newest second delivered
        # Request legs are counted from one source (hub.abort.sources, selection auto): once the
        # gateway's legs have arrived, legs of other sources (a Vegeta import of the same traffic)
        # are left out, as the dashboards' SQL leaves them out.
        self.gateway_legs = False

    def add(self, cells: Iterable[Cell], origin: str | None = None) -> None:
        """Cells of one rollup; ``origin`` is the input (sink, topic, partition) that stored them."""
        for cell in cells:
            self.cells.setdefault(cell.second, []).append(cell)
            if cell.kind == "gateway" and cell.source == "requests":
                self.gateway_legs = True
            self.watermark = max(self.watermark, cell.second)
            if origin is not None:
                key = (cell.source, origin)
                if cell.second > self.progress.get(key, -1):
                    self.progress[key] = cell.second
            counted = not self.gateway_legs or cell.source != "requests" or cell.kind in ("gateway", "")
            for condition in self.conditions:
                if condition.measurement == "absence" and counted and _matches(cell, condition.scope):
                    self.last_seen[condition.name] = max(self.last_seen.get(condition.name, 0), cell.second)

    def forget_before(self, second: int) -> None:
        for s in [s for s in self.cells if s < second]:
            del self.cells[s]
        for key in [k for k, s in self.progress.items() if s < second]:
            del self.progress[key]

    def settled(self, source: str, at: int) -> bool:
        """Whether every live input of ``source`` has delivered second ``at`` (so nothing of the
        seconds up to ``at`` is still on its way from a lagging partition)."""
        delivered = [second for (src, _), second in self.progress.items() if src == source]
        newest = max(delivered, default=at)
        return all(second >= at or newest - second > self.idle for second in delivered)

    def window_cells(self, end: int, window: float) -> list[Cell]:
        start = end - max(int(math.ceil(window)), 1)
        return [c for s, cells in self.cells.items() if start < s <= end for c in cells
                if not self.gateway_legs or c.source != "requests" or c.kind in ("gateway", "")]

    def evaluate(self, at: int, absence_only: bool = False) -> list[dict]:
        """Evaluate every rule at event-time second ``at``; returns alert records (firing/resolved)."""
        alerts = []
        for condition in self.conditions:
            is_absence = condition.measurement == "absence"
            if absence_only != is_absence:
                continue
            state = self.states[condition.name]
            window = parse_duration(condition.window)
            hold = parse_duration(condition.for_)
            if is_absence:
                last = self.last_seen.get(condition.name)
                if last is None:
                    continue  # no data yet at all: absence counts from the first record
                measured = Measured(float(at - last), 1)
            else:
                measured = measure(condition, self.window_cells(at, window), window)
            state.value, state.samples, state.evaluated_at = measured.value, measured.samples, at
            state.detail = measured.detail
            breaching = (measured.value is not None and measured.samples >= condition.min_samples
                         and _COMPARE[condition.comparison](measured.value, condition.threshold))
            if breaching:
                state.last_breach = at if state.last_breach is None else max(state.last_breach, at)
                if state.breach_since is None:
                    state.breach_since = at
                if state.firing is None and at - state.breach_since >= hold:
                    state.firing = f"{self.experiment_id}/{condition.name}/{state.breach_since}"
                    alerts.append(self._alert(condition, state, measured, at, window, "firing"))
            elif ((state.last_breach is not None and at <= state.last_breach)
                  or (state.breach_since is not None
                      and not self.settled(source_of(condition.measurement), at))):
                # The second that breached is still filling in from other partitions, or a lagging
                # partition has not delivered this second yet: a dip on partial data decides
                # nothing, so one breach cannot fire, resolve and fire again.
                pass
            else:
                if state.firing is not None:
                    alerts.append(self._alert(condition, state, measured, at, window, "resolved"))
                state.breach_since, state.firing, state.last_breach = None, None, None
        return alerts

    def _alert(self, condition, state: RuleState, measured: Measured, at: int, window: float, status: str) -> dict:
        value = measured.value
        shown = "no value" if value is None else f"{value:.4g}"
        message = (f"{self.experiment_id}: rule '{condition.name}' ({condition.severity}) {status}: "
                   f"{condition.measurement} {shown} {condition.comparison} {condition.threshold:g} "
                   f"over {condition.window} with {measured.samples} samples")
        if measured.detail:
            message += f"; {measured.detail}"
        if measured.contributors:
            top = measured.contributors[0]
            message += f"; top: {top['route']} ({top['value']})"
        return {
            "kind": "alert", "alert_id": state.firing, "status": status, "experiment_id": self.experiment_id,
            "rule": condition.name, "severity": condition.severity, "measurement": condition.measurement,
            "comparison": condition.comparison, "threshold": condition.threshold, "observed": value,
            "samples": measured.samples, "window_start": _iso(at - int(math.ceil(window))), "window_end": _iso(at),
            "breach_since": _iso(state.breach_since) if state.breach_since is not None else None,
            "top_contributors": measured.contributors, "example_request_ids": measured.examples,
            "message": message, "time": dt.datetime.now(dt.timezone.utc).isoformat(),
        }

    def view(self) -> list[dict]:
        out = []
        for c in self.conditions:
            s = self.states[c.name]
            out.append({"rule": c.name, "measurement": c.measurement, "comparison": c.comparison,
                        "threshold": c.threshold, "window": c.window, "severity": c.severity,
                        "value": s.value, "samples": s.samples, "firing": s.firing is not None,
                        "breaching_since": _iso(s.breach_since) if s.breach_since is not None else None,
                        "evaluated_at": _iso(s.evaluated_at) if s.evaluated_at else None, "detail": s.detail})
        return out


def rollup_origin(token: str) -> str:
    """The input a rollup came from: its chunk token without the offsets (``sink:topic:partition``)."""
    return token.rsplit(":", 1)[0]


#: Rollups of not-yet-known experiments a worker keeps for a later tick.
PENDING_MAX = 10_000


class Judge:
    """All experiments' judges of this worker, fed by rollups in log order."""

    def __init__(self, conditions_of: Callable[[str], list | None], emit: Callable[[dict], None],
                 horizon: float = 900.0, idle: float = 5.0):
        self.conditions_of = conditions_of
        self.emit = emit
        self.horizon = horizon
        self.idle = idle
        self.experiments: dict[str, ExperimentJudge] = {}
        # (experiment id, token) -> newest second: a chunk's rollups share its token, one per experiment
        self.seen_tokens: dict[tuple[str, str], int] = {}
        self.known_alerts: set[tuple[str, str]] = set()  # (alert id, status) already on hub.alerts
        self.duplicates = 0
        # Rollups of an experiment this worker's registry does not know yet (created a moment
        # before its traffic, the experiment log read a little later): kept, bounded, and judged
        # at a later tick once the experiment is known, instead of being dropped.
        self.pending: dict[tuple[str, str], tuple[bytes, int]] = {}  # (experiment id, token) -> (rollup, newest second)

    def judge_for(self, experiment_id: str) -> ExperimentJudge | None:
        judge = self.experiments.get(experiment_id)
        if judge is None:
            conditions = self.conditions_of(experiment_id)
            if conditions is None:
                return None
            judge = self.experiments[experiment_id] = ExperimentJudge(experiment_id, conditions, self.idle)
        return judge

    def add_rollup(self, value: bytes) -> list[dict]:
        token, experiment_id, cells = decode_rollup(value)
        seen = (experiment_id, token)
        if seen in self.seen_tokens:
            self.duplicates += 1
            return []
        judge = self.judge_for(experiment_id)
        if judge is None:
            if experiment_id and len(self.pending) < PENDING_MAX:
                self.pending[seen] = (value, max((c.second for c in cells), default=0))
            return []
        self.pending.pop(seen, None)
        self.seen_tokens[seen] = max((c.second for c in cells), default=0)
        before = judge.watermark
        judge.add(cells, origin=rollup_origin(token))
        # Every second the watermark passes is evaluated in order, so a breach inside a rollup that
        # spans several seconds (a catch-up, a large batch) is seen at the second it happened.
        seconds = sorted({c.second for c in cells if c.second > before}) or [judge.watermark]
        alerts: list[dict] = []
        for second in seconds:
            alerts += judge.evaluate(second)
        return self._publish(alerts)

    def tick(self, now_second: int) -> list[dict]:
        """Absence rules move with the clock, not with data."""
        out = []
        cutoff = now_second - int(self.horizon)
        known: dict[str, bool] = {}  # asked once per experiment and tick (an unknown one asks the log)
        for (experiment_id, token), (value, newest) in list(self.pending.items()):
            if newest < cutoff:
                del self.pending[experiment_id, token]  # beyond the horizon: no rule window reaches it any more
                continue
            if experiment_id not in known:
                known[experiment_id] = self.conditions_of(experiment_id) is not None
            if known[experiment_id]:
                out += self.add_rollup(value)
        for judge in self.experiments.values():
            out += self._publish(judge.evaluate(now_second, absence_only=True))
            judge.forget_before(cutoff)
        for seen in [k for k, s in self.seen_tokens.items() if s < cutoff]:
            del self.seen_tokens[seen]
        return out

    def _publish(self, alerts: list[dict]) -> list[dict]:
        fresh = []
        for alert in alerts:
            key = (alert["alert_id"], alert["status"])
            if key in self.known_alerts:
                continue
            self.known_alerts.add(key)
            fresh.append(alert)
            self.emit(alert)
        return fresh
