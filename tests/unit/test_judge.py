"""The abort judge's logic: sketch accuracy, windows, hold, minimum samples, dedup, statistics."""

from __future__ import annotations

import datetime as dt
import random
from types import SimpleNamespace

import pytest

from hub.abort.judge import ExperimentJudge, Judge, two_proportion_p_value
from hub.abort.rollup import Cell, encode_rollups
from hub.abort.sketch import QuantileSketch

T = 1_800_000_000


def rule(name="errors", measurement="error_rate", window="10s", comparison=">", threshold=0.2, hold="0s",
         min_samples=1, severity="abort", scope=None, control=None, confidence=0.99):
    return SimpleNamespace(name=name, measurement=measurement, window=window, comparison=comparison,
                           threshold=threshold, for_=hold, min_samples=min_samples, severity=severity,
                           scope=scope, control=control, confidence=confidence)


def scope(leg=None, route=None, service=None, target=None):
    return SimpleNamespace(leg=leg, route=route, service=service, target=target)


def cell(second, count, errors, route="/a", leg="primary", latency=10.0):
    c = Cell(second, "requests", leg, route, "gw", "backend", "", count, errors)
    c.sketch.add(latency, count)
    c.examples = [f"req-{second}-{i}" for i in range(min(errors, 3))]
    return c


def test_sketch_quantiles_are_within_relative_accuracy_and_merge_exactly():
    rng = random.Random(1)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]
    whole, a, b = QuantileSketch(), QuantileSketch(), QuantileSketch()
    whole.add_all(values)
    a.add_all(values[:7_000])
    b.add_all(values[7_000:])
    a.merge(b)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99):
        exact = ordered[int(q * (len(ordered) - 1))]
        assert abs(whole.quantile(q) - exact) / exact < 0.02
        assert a.quantile(q) == whole.quantile(q)


def test_fires_once_when_the_window_breaches_and_resolves_after():
    judge = ExperimentJudge("e", [rule()])
    judge.add([cell(T + s, 10, 0) for s in range(5)])
    assert judge.evaluate(T + 4) == []
    judge.add([cell(T + 5, 40, 38)])
    [alert] = judge.evaluate(T + 5)
    assert alert["status"] == "firing" and alert["alert_id"] == f"e/errors/{T + 5}"
    assert alert["observed"] == pytest.approx(38 / 90) and alert["samples"] == 90
    judge.add([cell(T + 6, 10, 9)])
    assert judge.evaluate(T + 6) == []  # still the same breach: no second alert
    judge.add([cell(T + s, 100, 0) for s in range(7, 17)])
    [resolved] = judge.evaluate(T + 16)
    assert resolved["status"] == "resolved" and resolved["alert_id"] == f"e/errors/{T + 5}"


def test_hold_and_minimum_samples_delay_or_prevent_firing():
    judge = ExperimentJudge("e", [rule(hold="3s", min_samples=30)])
    judge.add([cell(T, 10, 10)])
    assert judge.evaluate(T) == []  # 10 samples < 30
    judge.add([cell(T + 1, 30, 30)])
    assert judge.evaluate(T + 1) == []  # breaching since T+1, hold 3s
    judge.add([cell(T + 3, 30, 30)])
    assert judge.evaluate(T + 3) == []
    judge.add([cell(T + 4, 30, 30)])
    [alert] = judge.evaluate(T + 4)
    assert alert["breach_since"].startswith("2027") and alert["alert_id"].endswith(str(T + 1))


def test_scope_limits_the_measurement_and_contributors_name_the_route():
    judge = ExperimentJudge("e", [rule(scope=scope(route="/b"))])
    judge.add([cell(T, 100, 90, route="/a"), cell(T, 100, 1, route="/b")])
    assert judge.evaluate(T) == []
    judge.add([cell(T + 1, 100, 80, route="/b")])
    [alert] = judge.evaluate(T + 1)
    assert alert["top_contributors"][0]["route"] == "/b" and alert["example_request_ids"]


def test_latency_quantile_rule():
    judge = ExperimentJudge("e", [rule(name="p99", measurement="latency_p99", threshold=500)])
    judge.add([cell(T, 100, 0, latency=20)])
    assert judge.evaluate(T) == []
    judge.add([cell(T + 1, 10, 0, latency=2000)])
    [alert] = judge.evaluate(T + 1)
    assert alert["observed"] > 500


def test_the_judge_counts_a_rollup_once_and_replays_to_the_same_alert_ids():
    emitted = []
    conditions = {"e": [rule()]}
    judge = Judge(conditions.get, emitted.append)
    rollups = [encode_rollups(f"tok-{i}", {"e": [cell(T + i, 10, 9 if i >= 3 else 0)]})[0][1] for i in range(6)]
    for value in rollups + rollups[2:4]:  # two chunks stored again after a crash
        judge.add_rollup(value)
    assert judge.duplicates == 2
    assert [a["alert_id"] for a in emitted] == [f"e/errors/{T + 3}"]
    # A restarted judge replaying the same log, knowing what was raised, raises nothing again.
    again = []
    restarted = Judge(conditions.get, again.append)
    restarted.known_alerts = {(a["alert_id"], a["status"]) for a in emitted}
    for value in rollups:
        restarted.add_rollup(value)
    assert again == []
    assert restarted.experiments["e"].states["errors"].firing == f"e/errors/{T + 3}"


def test_absence_rule_fires_on_the_clock():
    judge = ExperimentJudge("e", [rule(name="silence", measurement="absence", threshold=5, comparison=">")])
    judge.add([cell(T, 10, 0)])
    assert judge.evaluate(T + 3, absence_only=True) == []
    [alert] = judge.evaluate(T + 10, absence_only=True)
    assert alert["rule"] == "silence" and alert["observed"] == 10


def test_statistical_rule_ignores_noise_and_catches_a_real_shift():
    rng = random.Random(7)
    stat = rule(name="canary-worse", threshold=0.0, control=scope(leg="primary"), scope=scope(leg="canary"),
                confidence=0.99, min_samples=100)
    fixed = rule(name="fixed", threshold=0.05, scope=scope(leg="canary"), min_samples=100)
    judge = ExperimentJudge("e", [stat, fixed])
    fired = []
    for s in range(30):  # noisy but healthy: both groups ~5% errors
        primary = sum(rng.random() < 0.05 for _ in range(400))
        canary = sum(rng.random() < 0.05 for _ in range(100))
        judge.add([cell(T + s, 400, primary, leg="primary"), cell(T + s, 100, canary, leg="canary")])
        fired += judge.evaluate(T + s)
    assert {a["rule"] for a in fired} == {"fixed"}  # the fixed threshold fires on noise, the test does not
    for s in range(30, 45):  # the canary really gets worse: 15%
        primary = sum(rng.random() < 0.05 for _ in range(400))
        canary = sum(rng.random() < 0.15 for _ in range(100))
        judge.add([cell(T + s, 400, primary, leg="primary"), cell(T + s, 100, canary, leg="canary")])
        fired += [a for a in judge.evaluate(T + s) if a["rule"] == "canary-worse"]
    caught = [a for a in fired if a["rule"] == "canary-worse" and a["status"] == "firing"]
    assert len(caught) == 1 and "significant" in caught[0]["message"]


def test_two_proportion_p_value():
    assert two_proportion_p_value(50, 1000, 50, 1000) == pytest.approx(0.5)
    assert two_proportion_p_value(150, 1000, 50, 1000) < 1e-6
    assert two_proportion_p_value(0, 0, 1, 10) == 1.0


def test_definition_rules_with_a_control_group_drive_the_judge():
    from hub.experiments.definition import parse_definition

    definition = parse_definition("""
title: Canary of the patient search
scenario: s
hypothesis: h
expected_outcome: e
steady_state: [{name: errors, sli: error_rate, source: requests, tolerance: {max: 0.05}}]
environment: {name: staging, kind: non-live, risk: low}
targets: {gateways: [gw]}
abort_conditions:
  - name: canary-worse
    measurement: error_rate
    scope: {leg: canary}
    control: {leg: primary}
    confidence: 0.999
    window: 30s
    comparison: ">"
    threshold: 0.02
    min_samples: 100
""")
    [condition] = definition.abort_conditions
    assert condition.control.leg == "primary" and condition.confidence == 0.999
    judge = ExperimentJudge("e", definition.abort_conditions)
    judge.add([cell(T, 1000, 50, leg="primary"), cell(T, 300, 15, leg="canary")])
    assert judge.evaluate(T) == []
    judge.add([cell(T + 1, 1000, 50, leg="primary"), cell(T + 1, 300, 60, leg="canary")])
    [alert] = judge.evaluate(T + 1)
    assert alert["rule"] == "canary-worse" and "significant" in alert["message"]


def test_shadow_mismatch_rate_counts_real_differences_not_noise():
    from datetime import datetime, timezone

    from hub.abort.rollup import pair_cells
    from hub.shadow.records import PAIR_COLUMNS

    def pair(second, outcome, noise=False, route="/patients/{id}"):
        values = {c: "" for c in PAIR_COLUMNS}
        values.update(event_time=datetime.fromtimestamp(T + second, timezone.utc), experiment_id="e", route=route,
                      gateway="gw", correlation_id=f"c{second}{outcome}{noise}", shadow_backend="replica",
                      latency_shadow_ms=5.0, outcome=outcome, noise=noise)
        return tuple(values[c] for c in PAIR_COLUMNS)

    judge = ExperimentJudge("e", [rule(name="shadow", measurement="shadow_mismatch_rate", threshold=0.2)])
    rows = [pair(0, "match") for _ in range(8)] + [pair(0, "body_mismatch", noise=True) for _ in range(8)]
    judge.add(pair_cells(rows)["e"])
    assert judge.evaluate(T) == []  # noise is not a difference
    judge.add(pair_cells([pair(1, "body_mismatch", route="/orders") for _ in range(10)])["e"])
    [alert] = judge.evaluate(T + 1)
    assert alert["rule"] == "shadow" and alert["top_contributors"][0]["route"] == "/orders"


def custom_cell(second, route, matching, base, count=None):
    c = Cell(second, "requests", "primary", route, "gw", "backend", "", count if count is not None else base, 0)
    c.custom = {"timeouts": [matching, base, [f"req-{second}-{i}" for i in range(min(matching, 3))]]}
    return c


def test_custom_ratio_and_count_sum_the_matches_the_sink_counted():
    ratio = rule(name="timeouts", measurement="ratio", threshold=0.1, min_samples=50)
    judge = ExperimentJudge("e", [ratio])
    judge.add([custom_cell(T, "/a", 5, 100), custom_cell(T, "/b", 25, 100)])
    [alert] = judge.evaluate(T)
    assert alert["observed"] == pytest.approx(0.15) and alert["samples"] == 200
    assert alert["top_contributors"][0] == {"route": "/b", "value": 0.25, "matching": 25, "samples": 100}
    assert alert["example_request_ids"] and all(e.startswith(f"req-{T}") for e in alert["example_request_ids"])
    count = rule(name="timeouts", measurement="count", comparison=">=", threshold=31)
    judge = ExperimentJudge("e", [count])
    judge.add([custom_cell(T, "/a", 5, 100), custom_cell(T, "/b", 25, 100)])
    assert judge.evaluate(T) == [] and judge.states["timeouts"].value == 30
    judge.add([custom_cell(T + 1, "/a", 1, 10)])
    [alert] = judge.evaluate(T + 1)
    assert alert["observed"] == 31 and alert["samples"] == 210


def test_custom_counts_survive_the_rollup_encoding():
    from hub.abort.rollup import decode_rollup, request_cells
    import datetime as dt
    from hub.abort.match import counters
    from hub.experiments.definition import RecordMatch

    when = dt.datetime.fromtimestamp(T, dt.timezone.utc)
    rows = [(None, when, "e", "", f"c{i}", "primary", "gw", "/a", "GET", "b", 504 if i < 3 else 200, 5.0,
             0, 0, "", "", "/s") for i in range(10)]
    cond = rule(name="timeouts", measurement="ratio")
    cond.where, cond.of = RecordMatch(status=[504]), RecordMatch(method=["GET"])
    cells = request_cells(rows, lambda e: counters([cond]))
    [(_, value)] = encode_rollups("tok", cells)
    _, _, [decoded] = decode_rollup(value)
    assert decoded.custom["timeouts"][:2] == [3, 10] and decoded.custom["timeouts"][2] == ["c0", "c1", "c2"]


def test_a_rollup_spanning_seconds_is_evaluated_at_each_second():
    # A catch-up rollup carries seconds 0..3; the breach lives in second 1 only (window 1 s).
    judge = Judge(lambda e: [rule(window="1s", min_samples=10)], lambda alert: None)
    cells = [cell(T, 100, 0), cell(T + 1, 100, 90), cell(T + 2, 100, 0), cell(T + 3, 100, 0)]
    [(_, value)] = encode_rollups("tok", {"e": cells})
    alerts = judge.add_rollup(value)
    assert [(a["status"], a["window_end"]) for a in alerts] == [
        ("firing", dt.datetime.fromtimestamp(T + 1, dt.timezone.utc).isoformat()),
        ("resolved", dt.datetime.fromtimestamp(T + 2, dt.timezone.utc).isoformat())]


def test_a_dip_on_partial_data_of_the_breaching_second_neither_resolves_nor_fires_again():
    # Partition 1's cells of second T+1 arrive first and breach; partition 2's healthy cells of the
    # same second then pull the rate under the threshold; partition 1 again pushes it over.
    judge = ExperimentJudge("e", [rule(window="1s", threshold=0.1, min_samples=10)])
    judge.add([cell(T, 100, 0)])
    assert judge.evaluate(T) == []
    judge.add([cell(T + 1, 50, 10)])
    [firing] = judge.evaluate(T + 1)
    judge.add([cell(T + 1, 100, 0, route="/b")])
    assert judge.evaluate(T + 1) == []  # 10/150 under the threshold, but the second is not complete
    judge.add([cell(T + 1, 50, 20)])
    assert judge.evaluate(T + 1) == []  # over again: the same breach, no second alert
    judge.add([cell(T + 2, 100, 0)])
    [resolved] = judge.evaluate(T + 2)
    assert (firing["status"], resolved["status"]) == ("firing", "resolved")
    assert firing["alert_id"] == resolved["alert_id"] == f"e/errors/{T + 1}"


def _rollup(partition: int, first: int, cells: list[Cell]) -> bytes:
    [(_, value)] = encode_rollups(f"requests:hub.requests:{partition}:{first}-{first + 9}", {"e": cells})
    return value


def test_a_lagging_partition_holds_the_resolution_so_its_late_errors_raise_no_second_alert():
    # Partition 0 breaches at T+1 and then runs ahead with healthy seconds; partition 1 lags and
    # delivers its share of the breach (its errors of T+2) only afterwards. Resolving on partition
    # 0's healthy seconds alone would fire a second alert for the same breach when they arrive.
    alerts: list[dict] = []
    judge = Judge(lambda e: [rule(window="1s", threshold=0.1, min_samples=10)], alerts.append)
    judge.add_rollup(_rollup(0, 0, [cell(T, 100, 0)]))
    judge.add_rollup(_rollup(1, 0, [cell(T, 100, 0)]))
    judge.add_rollup(_rollup(0, 10, [cell(T + 1, 100, 50)]))
    assert [a["status"] for a in alerts] == ["firing"]
    judge.add_rollup(_rollup(0, 20, [cell(T + 2, 100, 0), cell(T + 3, 100, 0)]))
    assert [a["status"] for a in alerts] == ["firing"]  # partition 1 has not delivered T+3 yet
    judge.add_rollup(_rollup(1, 10, [cell(T + 1, 100, 50), cell(T + 2, 100, 40)]))
    assert [a["status"] for a in alerts] == ["firing"]  # still the one breach
    judge.add_rollup(_rollup(1, 20, [cell(T + 3, 100, 0)]))
    assert [a["status"] for a in alerts] == ["firing", "resolved"]
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] == f"e/errors/{T + 1}"


def test_an_idle_partition_does_not_hold_the_resolution():
    # Partition 1 delivered the experiment's data once and then went quiet (no traffic keyed to it):
    # more than the idle limit behind the newest second, it is not waited for.
    alerts: list[dict] = []
    judge = Judge(lambda e: [rule(window="1s", threshold=0.1, min_samples=10)], alerts.append, idle=5)
    judge.add_rollup(_rollup(1, 0, [cell(T, 100, 0)]))
    judge.add_rollup(_rollup(0, 0, [cell(T + 1, 100, 50)]))
    judge.add_rollup(_rollup(0, 10, [cell(T + 2, 100, 0)]))
    assert [a["status"] for a in alerts] == ["firing"]  # partition 1 is 2 s behind: waited for
    judge.add_rollup(_rollup(0, 20, [cell(T + 6, 100, 0)]))
    assert [a["status"] for a in alerts] == ["firing", "resolved"]  # 6 s behind: idle


def test_rollups_of_an_experiment_not_known_yet_are_judged_once_it_is_known():
    """The experiment is created a moment before its traffic; the worker's registry reads the
    experiment log a little later than the first rollups: they are kept and judged at the next
    tick once the experiment is known, instead of being dropped."""
    emitted = []
    known: dict = {}
    judge = Judge(known.get, emitted.append)
    rollups = [encode_rollups(f"tok-{i}", {"e": [cell(T + i, 10, 9 if i >= 3 else 0)]})[0][1] for i in range(6)]
    for value in rollups:
        assert judge.add_rollup(value) == []
    assert emitted == [] and len(judge.pending) == 6
    judge.tick(T + 6)
    assert emitted == []  # still unknown: kept
    known["e"] = [rule()]
    judge.tick(T + 7)
    assert [a["alert_id"] for a in emitted] == [f"e/errors/{T + 3}"] and judge.pending == {}
    judge.tick(T + 8)
    assert len(emitted) == 1  # judged once


def test_rollups_of_an_unknown_experiment_are_kept_only_within_the_horizon():
    judge = Judge({}.get, lambda alert: None, horizon=60)
    judge.add_rollup(encode_rollups("tok", {"gone": [cell(T, 10, 9)]})[0][1])
    assert len(judge.pending) == 1
    judge.tick(T + 61)
    assert judge.pending == {}
