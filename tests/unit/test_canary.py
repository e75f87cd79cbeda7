"""Canary judgment: shifted distributions are detected, identical ones are not."""

from __future__ import annotations

import random

import pytest

from hub.shadow.canary import judge_errors, judge_latency, judge_samples, mann_whitney_u, two_proportions


def lognormal(rnd, n, mu=3.0, sigma=0.4, scale=1.0):
    return [scale * rnd.lognormvariate(mu, sigma) for _ in range(n)]


def test_mann_whitney_matches_known_values():
    # Worked by hand: pairs with x > y: 3 + 4 + 2 + 4 + 4 = 17 (scipy.stats.mannwhitneyu gives U1 = 17).
    x = [19, 22, 16, 29, 24]
    y = [20, 11, 17, 12]
    mw = mann_whitney_u(x, y)
    assert mw.u == 17.0  # U of x: pairs with x > y (scipy's statistic for x)
    assert mw.delta == pytest.approx(2 * 17 / 20 - 1)
    assert 0.05 < mw.p_greater < 0.2
    same = mann_whitney_u([1, 2, 3], [1, 2, 3])
    assert same.delta == 0.0 and same.p_two_sided == 1.0
    ties = mann_whitney_u([1] * 10, [1] * 10)
    assert ties.p_greater == 1.0 and ties.delta == 0.0


def test_shifted_latency_fails_identical_passes():
    rnd = random.Random(7)
    base = lognormal(rnd, 400)
    slower = lognormal(rnd, 400, scale=1.25)
    same = lognormal(rnd, 400)
    fail = judge_latency(slower, base)
    assert fail.verdict == "fail" and fail.confidence > 0.99 and fail.effect_size > 0.147
    ok = judge_latency(same, base)
    assert ok.verdict == "pass" and ok.confidence >= 0.95 and abs(ok.effect_size) < 0.1
    faster = judge_latency(lognormal(rnd, 400, scale=0.8), base)
    assert faster.verdict == "pass"


def test_few_samples_or_a_tiny_effect_are_not_a_fail():
    rnd = random.Random(3)
    assert judge_latency(lognormal(rnd, 5, scale=2), lognormal(rnd, 5)).verdict == "inconclusive"
    # a large sample makes a tiny shift significant, but its effect is below the minimum that matters
    tiny = judge_latency(lognormal(rnd, 4000, scale=1.02), lognormal(rnd, 4000))
    assert tiny.verdict != "fail"


def test_false_fail_rate_on_identical_distributions_stays_near_alpha():
    rnd = random.Random(11)
    fails = sum(judge_latency(lognormal(rnd, 100), lognormal(rnd, 100)).verdict == "fail" for _ in range(200))
    assert fails <= 12  # alpha 0.05 and an effect floor: expected well under 10 of 200


def test_error_rates():
    assert two_proportions(30, 200, 4, 200).p_greater < 0.001
    assert judge_errors(30, 200, 4, 200).verdict == "fail"
    assert judge_errors(2, 500, 3, 500).verdict == "pass"
    assert judge_errors(1, 10, 0, 10).verdict == "inconclusive"


def test_judge_samples_per_route():
    rnd = random.Random(5)
    rows = []
    for route, scale in (("/slow", 1.4), ("/same", 1.0)):
        rows += [(route, "primary", "v1", v, False) for v in lognormal(rnd, 300)]
        rows += [(route, "canary", "v2", v, False) for v in lognormal(rnd, 300, scale=scale)]
    rows += [("/only-primary", "primary", "v1", 10.0, False)] * 50
    verdicts = {(v.route, v.metric): v for v in judge_samples("exp", rows)}
    assert set(verdicts) == {("/slow", "latency"), ("/slow", "error_rate"), ("/same", "latency"),
                             ("/same", "error_rate")}
    assert verdicts[("/slow", "latency")].verdict == "fail"
    assert verdicts[("/same", "latency")].verdict == "pass"
    assert verdicts[("/slow", "latency")].canary_backend == "v2"


def test_legs_the_client_caused_are_left_out_of_the_canary_comparison():
    """A canary whose clients went away or uploaded too slowly is no worse than its baseline: those
    legs (408, or an error starting with ``client:``) are counted apart, in neither sample."""
    from hub.shadow.canary import client_caused, sample

    rnd = random.Random(3)
    legs = [("/p", "primary", "v1", v, 200, "") for v in lognormal(rnd, 300)]
    legs += [("/p", "canary", "v2", v, 200, "") for v in lognormal(rnd, 300)]
    by_client = [("/p", "canary", "v2", 0.0, 408, "client: the request body paused longer than 10 s"),
                 ("/p", "canary", "v2", 0.4, 0, "client: closed the connection before the answer"),
                 ("/p", "canary", "v2", 900.0, 200, "client: closed the connection during the answer")] * 30
    by_client += [("/p", "primary", "v1", 0.0, 408, "")] * 2
    assert all(client_caused(status, error) for *_, status, error in by_client)
    assert not client_caused(500, "") and not client_caused(0, "timeout: no answer from v2 within 30 s")
    verdicts = {v.metric: v for v in judge_samples("exp", [sample(*leg) for leg in legs + by_client])}
    errors, latency = verdicts["error_rate"], verdicts["latency"]
    assert errors.verdict == "pass" and errors.canary_value == 0.0
    assert latency.verdict == "pass"
    assert (errors.canary_samples, errors.baseline_samples) == (300, 300)
    assert (errors.canary_client_legs, errors.baseline_client_legs) == (90, 2)
    # a backend error is still one
    broken = legs + [("/p", "canary", "v2", 5.0, 502, "ServerDisconnectedError: v2 closed the connection")] * 90
    assert {v.metric: v for v in judge_samples("exp", [sample(*leg) for leg in broken])}[
        "error_rate"].verdict == "fail"
