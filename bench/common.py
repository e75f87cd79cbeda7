"""What benchmarks share: the context they run in and the result rows they return."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(RuntimeError):
    """A benchmark could not produce a figure; the message says why."""


@dataclass
class BenchContext:
    bootstrap: str
    scratch: Path  # a temporary directory, removed after the run
    events: int | None = None  # overrides each benchmark's default event count

    def progress(self, line: str) -> None:
        print(f"[bench] {line.strip()}", file=sys.stderr, flush=True)


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    higher_is_better: bool = True
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "unit": self.unit, "baseline": self.baseline,
                "ratio": None if self.ratio is None else round(self.ratio, 3),
                "higher_is_better": self.higher_is_better, "details": self.details}
