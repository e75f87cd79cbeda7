"""hub.stats against scipy's reference values, and the judge's SQL p-value against hub.stats."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys

import pytest
from scipy import stats as scipy_stats

from hub import stats
from hub.abort import measure
from hub.shadow import canary

Z_GRID = [-40.0, -8.5, -3.0, -1.0, -1e-9, 0.0, 1e-9, 0.5, 1.0, 1.96, 3.0, 6.0, 8.5, 12.0, 20.0, 37.0]


@pytest.mark.parametrize("z", Z_GRID)
def test_normal_tails_match_scipy_to_the_far_tail(z):
    assert stats.normal_sf(z) == pytest.approx(scipy_stats.norm.sf(z), rel=1e-12, abs=0)
    assert stats.normal_cdf(z) == pytest.approx(scipy_stats.norm.cdf(z), rel=1e-12, abs=0)


def _counts():
    sizes = [1, 2, 3, 7, 40, 1000, 100_000]
    for n1, n2 in itertools.product(sizes, sizes):
        for k1 in sorted({0, 1, n1 // 3, n1 // 2, n1 - 1, n1}):
            for k2 in sorted({0, 1, n2 // 10, n2 // 2, n2}):
                if 0 <= k1 <= n1 and 0 <= k2 <= n2:
                    yield k1, n1, k2, n2


COUNTS = list(_counts())


def _scipy_one_sided(k1, n1, k2, n2) -> float:
    """Pearson's chi-square of the 2x2 table (no continuity correction) is the pooled z squared."""
    chi2, p, _, _ = scipy_stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
    return p / 2 if k1 / n1 > k2 / n2 else 1 - p / 2


def test_two_proportion_p_value_matches_scipy_over_a_grid():
    compared = 0
    for k1, n1, k2, n2 in COUNTS:
        pooled = (k1 + k2) / (n1 + n2)
        if pooled in (0.0, 1.0):
            continue  # no variance: the defined values below
        expected = _scipy_one_sided(k1, n1, k2, n2)
        got = stats.two_proportion_p_value(k1, n1, k2, n2)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), (k1, n1, k2, n2)
        assert canary.two_proportions(k1, n1, k2, n2).p_greater == got
        assert measure.two_proportion_p_value(k1, n1, k2, n2) == got
        compared += 1
    assert compared > 500


def test_two_proportion_far_tail_keeps_its_digits():
    # 1 - Phi(z) rounds to 0 past z ~ 8.3; the p-value keeps scipy's value there.
    expected = _scipy_one_sided(600, 1000, 100, 1000)
    assert 0 < expected < 1e-100
    assert stats.two_proportion_p_value(600, 1000, 100, 1000) == pytest.approx(expected, rel=1e-9)


def test_two_proportion_edge_cases():
    assert stats.two_proportion_p_value(50, 1000, 50, 1000) == 0.5  # equal proportions
    assert stats.two_proportion_p_value(7, 40, 7, 40) == 0.5
    assert stats.two_proportion_p_value(0, 0, 1, 10) == 1.0   # no sample on a side
    assert stats.two_proportion_p_value(1, 10, 0, 0) == 1.0
    assert stats.two_proportion_p_value(0, 10, 0, 20) == 1.0  # zero counts: no variance, not larger
    assert stats.two_proportion_p_value(5, 5, 9, 9) == 1.0    # all failed on both sides
    assert stats.two_proportion_p_value(1, 1, 0, 1) == pytest.approx(_scipy_one_sided(1, 1, 0, 1))
    pr = stats.two_proportions(30, 200, 4, 200)
    assert pr.h == pytest.approx(2 * math.asin(math.sqrt(0.15)) - 2 * math.asin(math.sqrt(0.02)))
    assert stats.two_proportions(0, 0, 3, 5).p_greater == 1.0


def _samples():
    rnd = random.Random(5)
    cases = [([1.0], [2.0]), ([2.0], [1.0]), ([1.0, 2.0], [3.0]), ([5.0, 1.0, 3.0], [2.0, 4.0]),
             ([19, 22, 16, 29, 24], [20, 11, 17, 12]), ([1, 1, 2, 2, 3], [1, 2, 2, 3, 3, 3]),
             ([1, 1, 1, 2], [1, 1, 1, 1]), ([0.0] * 3 + [1.0], [0.0] * 5)]
    for n1, n2 in [(3, 4), (10, 10), (25, 8), (60, 70), (400, 300)]:
        cases.append(([rnd.randint(0, 6) for _ in range(n1)], [rnd.randint(0, 6) for _ in range(n2)]))  # many ties
        cases.append(([rnd.lognormvariate(3, 0.5) * 1.2 for _ in range(n1)],
                      [rnd.lognormvariate(3, 0.5) for _ in range(n2)]))
    return cases


@pytest.mark.parametrize("x,y", _samples())
def test_mann_whitney_matches_scipy(x, y):
    mw = stats.mann_whitney_u(x, y)
    greater = scipy_stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic", use_continuity=True)
    both = scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert mw.u == greater.statistic == both.statistic
    assert mw.p_greater == pytest.approx(greater.pvalue, rel=1e-9, abs=1e-15)
    assert mw.p_two_sided == pytest.approx(both.pvalue, rel=1e-9, abs=1e-15)
    assert mw.delta == pytest.approx(2 * greater.statistic / (len(x) * len(y)) - 1)
    assert canary.mann_whitney_u(x, y) == mw


def test_mann_whitney_far_tail_and_edge_cases():
    x, y = list(range(1000, 1300)), list(range(300))
    reference = scipy_stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
    assert 0 < reference < 1e-90
    assert stats.mann_whitney_u(x, y).p_greater == pytest.approx(reference, rel=1e-9)
    assert stats.mann_whitney_u([], [1.0]).p_greater == 1.0
    tied = stats.mann_whitney_u([1] * 10, [1] * 10)  # no variance (scipy gives nan): nothing shown
    assert (tied.p_greater, tied.p_two_sided, tied.delta) == (1.0, 1.0, 0.0)


def test_the_judges_sql_p_value_computes_the_same():
    grid = [c for c in COUNTS if c[1] <= 1000 and c[3] <= 1000][::7]
    selects = [measure._p_value_sql(*(f"toFloat64({v})" for v in c)) for c in grid]
    # in a process of its own: the engine embeds one data path per process, and other tests of the
    # same run may have opened theirs
    query = "SELECT " + ", ".join(f"toString({s})" for s in selects)
    out = subprocess.run([sys.executable, "-c", "import sys, chdb; "
                          "sys.stdout.write(chdb.query(sys.stdin.read(), 'TabSeparated').bytes().decode())"],
                         input=query, capture_output=True, text=True, timeout=300, check=True).stdout
    values = [float(v) for v in out.strip().split("\t")]
    for c, value in zip(grid, values, strict=True):
        assert value == pytest.approx(stats.two_proportion_p_value(*c), rel=1e-9, abs=1e-15), c


def test_the_benchmarks_percentile_is_numpys_linear_percentile():
    import numpy

    rng = random.Random(5)
    samples = [[1.0], [3.0, 1.0], [rng.expovariate(1.0) for _ in range(999)], [float(i % 7) for i in range(100)],
               [rng.uniform(-5, 5) for _ in range(10)]]
    for values in samples:
        for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
            assert stats.percentile(values, q) == pytest.approx(float(numpy.percentile(values, q * 100)),
                                                                rel=1e-12, abs=1e-12), (len(values), q)
    with pytest.raises(ValueError):
        stats.percentile([], 0.5)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 95)  # a percent where a fraction is meant
