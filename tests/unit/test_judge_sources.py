"""The abort judge counts request legs from one source: once the gateway's legs are there, a Vegeta
import of the same traffic (or an emitter's copy) is left out, so no count is doubled; without
gateway legs every leg counts. Rollups carry each leg's source kind through their encoding."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from hub.abort.judge import ExperimentJudge
from hub.abort.measure import evaluate
from hub.abort.rollup import decode_rollup, encode_rollups, request_cells
from hub.experiments.definition import AbortCondition

T = dt.datetime(2026, 1, 5, 10, 0, 0, tzinfo=dt.timezone.utc)


def legs(n: int, errors: int, source: str) -> list[tuple]:
    return [(uuid.uuid4(), T + dt.timedelta(milliseconds=i), "exp", "", uuid.uuid4().hex, "primary", "edge-gw",
             "/patients", "GET", "patient-api", 503 if i < errors else 200, 10.0, 1, 1, "h", "", source)
            for i in range(n)]


def judged(rows, measurement: str) -> tuple[float | None, int]:
    cells = request_cells(rows)["exp"]
    # through the rollup's wire format, as the judge receives them
    (_, value), = encode_rollups("sink:hub.requests:0:1", {"exp": cells})
    _, _, cells = decode_rollup(value)
    condition = msgspec.convert({"name": "r", "measurement": measurement, "window": "10s", "comparison": ">",
                                 "threshold": 0.1}, AbortCondition)
    judge = ExperimentJudge("exp", [condition])
    judge.add(cells)
    second = int(T.timestamp())
    m = evaluate(condition, judge.window_cells(second, 10.0), 10.0)
    return m.value, m.samples


def test_a_vegeta_import_of_the_gateway_traffic_is_not_counted_twice():
    rows = legs(100, 10, "/hub-gateway/edge-gw") + legs(100, 30, "/vegeta") + legs(5, 5, "/emitters/python")
    assert judged(rows, "error_rate") == (0.1, 100)
    assert judged(rows, "request_rate") == (10.0, 100)


def test_without_gateway_legs_every_leg_counts():
    assert judged(legs(40, 4, "/vegeta") + legs(10, 0, "/emitters/python"), "error_rate") == (0.08, 50)


def test_absence_is_not_refreshed_by_another_source_of_the_same_traffic():
    condition = msgspec.convert({"name": "silent", "measurement": "absence", "window": "5s", "comparison": ">",
                                 "threshold": 5}, AbortCondition)
    judge = ExperimentJudge("exp", [condition])
    second = int(T.timestamp())
    late = [r[:1] + (T + dt.timedelta(seconds=5),) + r[2:] for r in legs(3, 0, "/vegeta")]
    judge.add(request_cells(legs(3, 0, "/hub-gateway/edge-gw"))["exp"])
    judge.add(request_cells(late)["exp"])
    judge.evaluate(second + 8, absence_only=True)
    assert judge.states["silent"].value == 8.0
