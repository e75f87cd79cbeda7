"""An abort rule firing inside the run ends the run for the judge at once: until the experiment log
says when the run ended (the abort event is recorded a moment later, seconds later on a loaded
worker), the run ends at the instant the judge decided plus abort_grace, so a rule breaching after
the abort is recorded outside the run and sets nothing off."""

from __future__ import annotations

from types import SimpleNamespace

from hub.abort.rollup import Cell, encode_rollups
from hub.abort.run import RunJudges, RunSpan

T = 1_800_000_000


def rule(name="errors", measurement="error_rate", window="10s", threshold=0.2, min_samples=50, severity="abort"):
    return SimpleNamespace(name=name, measurement=measurement, window=window, comparison=">", threshold=threshold,
                           for_="0s", min_samples=min_samples, severity=severity, scope=None, control=None,
                           confidence=0.99, where=None, of=None)


def cell(second, count, errors):
    c = Cell(second, "requests", "primary", "/checkout", "gw", "checkout-v1", "", count, errors)
    c.sketch.add(20.0, count)
    return c


def rollup(token, cells):
    return encode_rollups(token, {"e": cells})[0][1]


CONDITIONS = [rule("checkout-errors"), rule("silence", "absence", "15s", threshold=15, min_samples=1)]


def run_until(judges, clock, until):
    for clock["now"] in range(clock["now"] + 1, until + 1):
        judges.tick(clock["now"])


def test_silence_after_the_judges_own_abort_is_outside_the_run_before_the_abort_is_read_from_the_log():
    clock = {"now": T}
    span = {"e": RunSpan("e", "running", T, None, grace=1.0)}  # the log never shows the abort here
    emitted = []
    judges = RunJudges({"e": CONDITIONS}.get, emitted.append, run_of=span.get, clock_experiments=lambda: ["e"],
                       clock=lambda: clock["now"])
    run_until(judges, clock, T + 4)
    judges.add_rollup(rollup("requests:r:0:0-99", [cell(T + 2, 100, 0)]))
    judges.add_rollup(rollup("requests:r:0:100-199", [cell(T + 4, 100, 80)]))  # the judge decides at T + 4
    run_until(judges, clock, T + 40)
    assert [(a["rule"], a["status"], a["outside_run"]) for a in emitted] == [
        ("checkout-errors", "firing", False), ("silence", "firing", True)]
    assert "after the experiment's end (aborted, plus its abort_grace)" in emitted[1]["message"]
    assert emitted[1]["observed"] > 15


def test_once_the_log_says_when_the_run_ended_its_end_counts():
    clock = {"now": T}
    span = {"e": RunSpan("e", "running", T, None, grace=1.0)}
    emitted = []
    judges = RunJudges({"e": CONDITIONS}.get, emitted.append, run_of=span.get, clock_experiments=lambda: ["e"],
                       clock=lambda: clock["now"])
    judges.add_rollup(rollup("requests:r:0:0-99", [cell(T + 2, 100, 80)]))  # decided at T
    span["e"] = RunSpan("e", "aborted", T, T + 30 + 1, "aborted", grace=1.0)  # the abort recorded at T + 30
    run_until(judges, clock, T + 20)
    [silence] = [a for a in emitted if a["rule"] == "silence"]
    assert silence["outside_run"] is False  # T + 18: inside the run as the log has it


def test_a_warn_rule_does_not_end_the_run():
    clock = {"now": T}
    span = {"e": RunSpan("e", "running", T, None, grace=1.0)}
    emitted = []
    conditions = [rule("checkout-errors", severity="warn"), CONDITIONS[1]]
    judges = RunJudges({"e": conditions}.get, emitted.append, run_of=span.get, clock_experiments=lambda: ["e"],
                       clock=lambda: clock["now"])
    judges.add_rollup(rollup("requests:r:0:0-99", [cell(T + 2, 100, 80)]))
    run_until(judges, clock, T + 20)
    assert [(a["rule"], a["outside_run"]) for a in emitted] == [("checkout-errors", False), ("silence", False)]


def test_an_abort_alert_replayed_by_a_restarted_judge_does_not_end_the_run():
    """A worker restarted before its abort reached the log replays the rollups: the abort alert is
    known already and not published again, so it sets nothing off and ends nothing; a rule firing
    later inside the run still acts."""
    clock = {"now": T}
    span = {"e": RunSpan("e", "running", T, None, grace=1.0)}
    emitted = []
    judges = RunJudges({"e": CONDITIONS}.get, emitted.append, run_of=span.get, clock_experiments=lambda: ["e"],
                       clock=lambda: clock["now"])
    judges.known_alerts = {(f"e/checkout-errors/{T + 2}", "firing")}
    judges.add_rollup(rollup("requests:r:0:0-99", [cell(T + 2, 100, 80)]))
    run_until(judges, clock, T + 20)
    assert [(a["rule"], a["outside_run"]) for a in emitted] == [("silence", False)]
