"""The shadow mismatch measurement leaves out pairs whose primary failed (``primary_failed``): they
are neither mismatches nor pairs it counts, in the judge's streaming evaluation (rollup cells of
the stored rows) and in the SQL the measurement compiles to."""

from __future__ import annotations

from datetime import datetime, timezone

from hub.abort import measure
from hub.abort.judge import ExperimentJudge
from hub.abort.rollup import pair_cells
from hub.shadow.records import PAIR_COLUMNS
from tests.unit.test_judge import T, rule


def pair(second: int, outcome: str, n: int, noise: bool = False) -> tuple:
    values = {c: "" for c in PAIR_COLUMNS}
    values.update(event_time=datetime.fromtimestamp(T + second, timezone.utc), experiment_id="e",
                  route="/patients/{id}/allergies", gateway="gw", correlation_id=f"c{second}-{outcome}-{n}",
                  shadow_backend="v2", latency_shadow_ms=5.0, outcome=outcome, noise=noise)
    return tuple(values[c] for c in PAIR_COLUMNS)


def test_pairs_whose_primary_failed_are_not_counted_by_the_judge():
    # 40 pairs while the primary fails, 20 where it answered: 2 real differences among those (10 %)
    rows = ([pair(0, "primary_failed", i) for i in range(40)] + [pair(0, "match", i) for i in range(18)]
            + [pair(0, "body_mismatch", i) for i in range(2)])
    judge = ExperimentJudge("e", [rule(name="v2-diverging", measurement="shadow_mismatch_rate", threshold=0.05,
                                       min_samples=20)])
    judge.add(pair_cells(rows)["e"])
    [alert] = judge.evaluate(T)
    state = judge.states["v2-diverging"]
    assert (state.value, state.samples) == (0.1, 20)
    assert alert["rule"] == "v2-diverging"
    # while only the primary fails, the shadow is never blamed
    only_failed = ExperimentJudge("e", [rule(name="v2-diverging", measurement="shadow_mismatch_rate", threshold=0.05,
                                             min_samples=1)])
    only_failed.add(pair_cells([pair(0, "primary_failed", i) for i in range(40)]).get("e", []))
    assert only_failed.evaluate(T) == [] and only_failed.states["v2-diverging"].samples == 0


def test_the_compiled_sql_leaves_out_pairs_whose_primary_failed():
    value, samples, rows = measure.aggregate_sql(rule(measurement="shadow_mismatch_rate"), window=10)
    assert "primary_failed" in samples and "primary_failed" in rows
    assert measure.pair_counted("status_mismatch") and not measure.pair_counted("primary_failed")
    assert not measure.pair_mismatch("primary_failed", False)
