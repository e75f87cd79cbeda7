"""A mergeable quantile sketch with relative accuracy (logarithmic buckets, as in DDSketch).

Partial sketches from different partitions and seconds merge by adding bucket counts, so a
window's quantile is exact to within ``alpha`` relative error whatever way it was split.
"""

from __future__ import annotations

import math
from typing import Iterable

ALPHA = 0.01
_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_MIN = 1e-3  # values at or below 1 µs (in ms) share the zero bucket


def bucket_of(value: float) -> int:
    if value <= _MIN:
        return -(1 << 30)
    return math.ceil(math.log(value) / _LOG_GAMMA)


def value_of(bucket: int) -> float:
    if bucket == -(1 << 30):
        return 0.0
    return 2 * _GAMMA ** bucket / (_GAMMA + 1)


class QuantileSketch:
    __slots__ = ("bins", "count")

    def __init__(self, bins: dict[int, int] | None = None):
        self.bins: dict[int, int] = dict(bins or {})
        self.count = sum(self.bins.values())

    def add(self, value: float, n: int = 1) -> None:
        b = bucket_of(value)
        self.bins[b] = self.bins.get(b, 0) + n
        self.count += n

    def add_all(self, values: Iterable[float]) -> None:
        for v in values:
            self.add(v)

    def merge(self, other: "QuantileSketch | dict") -> None:
        bins = other.bins if isinstance(other, QuantileSketch) else other
        for b, n in bins.items():
            b = int(b)
            self.bins[b] = self.bins.get(b, 0) + n
            self.count += n

    def quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen > rank:
                return value_of(b)
        return value_of(max(self.bins))

    def to_dict(self) -> dict[str, int]:
        return {str(b): n for b, n in self.bins.items()}
