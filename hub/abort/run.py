"""The span an experiment's abort rules act in: from its start to its end plus ``abort_grace``.

The judge decides on event time: a rule evaluated at a second outside the span (the experiment not
started yet, or ended longer than the grace ago) raises an alert that is recorded as outside the
run and triggers nothing. Seconds are whole epoch seconds, as the judge's rollups count them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from hub.abort.judge import ExperimentJudge, Judge, RuleState
from hub.abort.wording import contributor, value_against_threshold
from hub.experiments.definition import parse_duration

BEFORE, INSIDE, AFTER = "before", "inside", "after"


@dataclass(frozen=True)
class RunSpan:
    experiment_id: str
    status: str
    start: int | None  # the first second of the run; None before the start
    end: int | None  # the last second rules act in (end plus grace); None while running
    ended: str = ""  # "aborted" or "completed" once the run is over
    grace: float = 0.0  # the definition's abort_grace, in seconds

    @classmethod
    def of(cls, state) -> "RunSpan":
        """The span of an ``ExperimentState``."""
        start = int(math.floor(state.started_at.timestamp())) if state.started_at is not None else None
        end = None
        grace = parse_duration(getattr(state.definition, "abort_grace", "0s") or "0s")
        if state.ended_at is not None:
            end = int(math.floor(state.ended_at.timestamp() + grace))
        ended = state.status if state.status in ("aborted", "completed") else ""
        return cls(state.id, state.status, start, end, ended, grace)

    def segment(self, second: int) -> str:
        if self.start is None or second < self.start:
            return BEFORE
        if self.end is not None and second > self.end:
            return AFTER
        return INSIDE

    def why_outside(self, second: int) -> str:
        """Why ``second`` is outside the run, in words ('' when it is inside)."""
        segment = self.segment(second)
        if segment == INSIDE:
            return ""
        if segment == BEFORE:
            if self.start is None:
                return f"outside the run: the experiment is {self.status}, not started"
            return "outside the run: before the experiment's start"
        return f"outside the run: after the experiment's end ({self.ended or self.status}, plus its abort_grace)"


# ---- the judge, bounded by the run ----------------------------------------------------------------
class RunJudge(ExperimentJudge):
    """An experiment's judge that acts only inside the run (``run()`` gives its current span).

    Windows hold only seconds from the start on; ``absence`` counts from the start, so a run that
    never receives a record in scope fires it too; a rule's state starts afresh when the run
    starts (a breach before the start is not carried into it); every alert raised at a second
    outside the run carries ``outside_run`` and the reason in its message.

    An abort rule firing inside the run ends it at once for this judge (``aborted_at``, set when the
    alert is published): the abort it sets off is recorded a moment later (on a loaded worker,
    seconds later), and until the experiment log says when the run ended, the run is taken to end at
    that instant plus ``abort_grace``. So a rule breaching after the judge's abort (an ``absence``
    rule once the traffic stopped) is outside the run whether or not the abort event was read yet.
    """

    def __init__(self, experiment_id: str, conditions: list, idle: float = 5.0,
                 run: Callable[[], RunSpan | None] | None = None):
        super().__init__(experiment_id, conditions, idle)
        self.run = run or (lambda: None)
        self.aborted_at: float | None = None  # when this judge fired an abort rule inside the run
        self._segments: dict[str, str] = {}  # rule -> the segment it was last evaluated in
        self._span: RunSpan | None = None
        self._segment = INSIDE

    def window_cells(self, end: int, window: float) -> list:
        cells = super().window_cells(end, window)
        if self._span is not None and self._segment == INSIDE and self._span.start is not None:
            cells = [c for c in cells if c.second >= self._span.start]
        return cells

    def evaluate(self, at: int, absence_only: bool = False) -> list[dict]:
        span = self.run()
        if span is not None and span.start is not None and span.end is None and self.aborted_at is not None:
            span = replace(span, end=int(math.floor(self.aborted_at + span.grace)), ended="aborted")
        self._span = span
        self._segment = segment = span.segment(at) if span is not None else INSIDE
        for condition in self.conditions:
            if (condition.measurement == "absence") != absence_only:
                continue
            if self._segments.get(condition.name) == BEFORE and segment == INSIDE:
                self.states[condition.name] = RuleState()  # the run starts: a breach before it counts for nothing
            self._segments[condition.name] = segment
            if condition.measurement == "absence" and span is not None:
                if span.start is None:
                    self.last_seen.pop(condition.name, None)  # nothing to count from before the start
                else:
                    self.last_seen[condition.name] = max(self.last_seen.get(condition.name, span.start), span.start)
        alerts = super().evaluate(at, absence_only)
        why = span.why_outside(at) if span is not None else ""
        for alert in alerts:
            alert["outside_run"] = bool(why)
            if why:
                alert["message"] += f"; {why}: recorded, nothing done"
        return alerts

    def _alert(self, condition, state, measured, at: int, window: float, status: str) -> dict:
        alert = super()._alert(condition, state, measured, at, window, status)
        message = (f"{self.experiment_id}: rule '{condition.name}' ({condition.severity}) {status}: "
                   f"{value_against_threshold(condition.measurement, measured.value, condition.comparison, condition.threshold, status)} "
                   f"over {condition.window} with {measured.samples} samples")
        if measured.detail:
            message += f"; {measured.detail}"
        if measured.contributors:
            message += f"; top: {contributor(measured.contributors[0])}"
        alert["message"] = message
        return alert


class RunJudges(Judge):
    """All experiments' judges of a worker, each bounded by its run.

    ``run_of(id)`` gives an experiment's span; ``clock_experiments()`` the experiments whose
    ``absence`` rules this worker judges on the clock although no rollup of theirs arrived yet.
    """

    def __init__(self, conditions_of, emit, horizon: float = 900.0, idle: float = 5.0,
                 run_of: Callable[[str], RunSpan | None] | None = None,
                 clock_experiments: Callable[[], Iterable[str]] | None = None, clock: Callable[[], float] = time.time):
        super().__init__(conditions_of, emit, horizon, idle)
        self.run_of = run_of or (lambda _id: None)
        self.clock_experiments = clock_experiments or (lambda: ())
        self.clock = clock

    def judge_for(self, experiment_id: str):
        judge = self.experiments.get(experiment_id)
        if judge is None:
            conditions = self.conditions_of(experiment_id)
            if conditions is None:
                return None
            judge = self.experiments[experiment_id] = RunJudge(
                experiment_id, conditions, self.idle, run=lambda: self.run_of(experiment_id))
        return judge

    def _publish(self, alerts: list[dict]) -> list[dict]:
        fresh = super()._publish(alerts)
        for alert in fresh:  # an abort this worker sets off (a replayed one was acted on before)
            judge = self.experiments.get(alert["experiment_id"])
            if (alert["status"] == "firing" and alert["severity"] == "abort" and not alert.get("outside_run")
                    and isinstance(judge, RunJudge) and judge.aborted_at is None):
                judge.aborted_at = self.clock()
        return fresh

    def tick(self, now_second: int) -> list[dict]:
        for experiment_id in self.clock_experiments():
            if experiment_id not in self.experiments:
                self.judge_for(experiment_id)
        return super().tick(now_second)
