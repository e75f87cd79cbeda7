"""The hub's statistics, written once: the normal tail, the two-proportion z-test and Mann-Whitney U.

- ``normal_sf(z)`` / ``normal_cdf(z)``: P(Z > z) / P(Z <= z) for a standard normal variable, each
  from ``erfc`` so that neither loses its far tail to ``1 - x``.
- ``two_proportion_p_value(k1, n1, k2, n2)``: one-sided p-value that the first group's proportion
  exceeds the second's, pooled-variance z-test (the square of its z is Pearson's chi-square of the
  2x2 table without continuity correction). No sample on a side: 1.0. Zero pooled variance (both
  proportions 0, or both 1): 0.0 when the first is larger, else 1.0. The abort judge's control
  groups (``hub.abort.measure``, also as SQL there) and the canary's error rates use it.
- ``two_proportions``: that p-value with both proportions and Cohen's h (the canary's effect size).
- ``mann_whitney_u(x, y)``: U of ``x`` (pairs with x > y, ties half), normal approximation with tie
  and continuity correction, one-sided "x greater" and two-sided p-values, and Cliff's delta
  (= rank-biserial correlation) with its standard error. An empty side: p 1.0. All values tied
  (zero variance): one-sided p 1.0 unless U exceeds its mean, two-sided 1.0.

``tests/unit/test_stats.py`` pins these to scipy's values over a grid of inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["normal_sf", "normal_cdf", "two_proportion_p_value", "two_proportions", "Proportions",
           "mann_whitney_u", "MannWhitney"]

_SQRT2 = math.sqrt(2.0)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal variable."""
    return 0.5 * math.erfc(z / _SQRT2)


def normal_cdf(z: float) -> float:
    """P(Z <= z) for a standard normal variable."""
    return 0.5 * math.erfc(-z / _SQRT2)


def two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that ``k1 / n1`` exceeds ``k2 / n2`` (pooled two-proportion z-test)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 0.0 if p1 > p2 else 1.0
    return normal_sf((p1 - p2) / math.sqrt(variance))


@dataclass(frozen=True)
class Proportions:
    p1: float
    p2: float
    p_greater: float  # one-sided: p1 > p2
    h: float          # Cohen's h, positive when p1 > p2
    se_h: float


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> Proportions:
    """Both proportions, the one-sided p-value that the first is larger and Cohen's h."""
    if n1 == 0 or n2 == 0:
        return Proportions(0.0, 0.0, 1.0, 0.0, float("inf"))
    p1, p2 = k1 / n1, k2 / n2
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))
    return Proportions(p1, p2, two_proportion_p_value(k1, n1, k2, n2), h, math.sqrt(1 / n1 + 1 / n2))


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Average ranks (1-based) and the tie term sum(t^3 - t)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    n = len(values)
    while i < n:
        j = i
        v = values[order[i]]
        while j + 1 < n and values[order[j + 1]] == v:
            j += 1
        r = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = r
        t = j - i + 1
        ties += t * t * t - t
        i = j + 1
    return ranks, ties


@dataclass(frozen=True)
class MannWhitney:
    u: float            # U of the first sample (pairs where x > y, ties half)
    p_greater: float    # one-sided p: x stochastically greater than y
    p_two_sided: float
    delta: float        # Cliff's delta = P(x > y) - P(x < y) = rank-biserial correlation
    se_delta: float


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Mann-Whitney U of ``x`` against ``y`` (normal approximation, tie and continuity corrected)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return MannWhitney(0.0, 1.0, 1.0, 0.0, float("inf"))
    ranks, ties = _ranks(list(x) + list(y))
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    delta = 2.0 * u1 / (n1 * n2) - 1.0
    if var <= 0:
        return MannWhitney(u1, 1.0 if u1 <= mu else 0.0, 1.0, delta, float("inf"))
    sd = math.sqrt(var)
    z_greater = (u1 - mu - 0.5) / sd
    z_two = (abs(u1 - mu) - 0.5) / sd
    return MannWhitney(u1, normal_sf(z_greater), min(1.0, 2.0 * normal_sf(z_two)), delta, 2.0 * sd / (n1 * n2))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation between the closest ranks
    (numpy's default method); what every benchmark reports as p50, p95 and p99."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile: q must be within 0..1, got {q}")
    position = (len(ordered) - 1) * q
    lo = int(position)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)
