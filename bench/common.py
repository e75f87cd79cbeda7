"""What benchmarks share: the context they run in, the result rows they return, and helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hub.settings import REPO_ROOT


class BenchError(RuntimeError):
    """A benchmark could not produce a figure; the message says why."""


@dataclass
class BenchContext:
    bootstrap: str
    scratch: Path  # a temporary directory, removed after the run
    events: int | None = None  # overrides each benchmark's default size (events, legs, rows)
    #: Per-benchmark sizes from the command line (``dashboard_rows``, ``pairing_legs`` ...); a
    #: value here wins over ``events``, which wins over the benchmark's default.
    sizes: dict = field(default_factory=dict)
    #: Extra text a benchmark wants printed after the table (per-query figures and the like).
    sections: list = field(default_factory=list)

    def progress(self, line: str) -> None:
        print(f"[bench] {line.strip()}", file=sys.stderr, flush=True)

    def size(self, name: str, default: int) -> int:
        value = self.sizes.get(name)
        if value is not None:
            return int(value)
        return int(self.events) if self.events is not None else default


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


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """The process's peak resident set size (``VmHWM`` of ``/proc/<pid>/status``) in MiB.

    None when the process is gone or the kernel does not report it. Read it before the process
    exits: the value is the peak over the whole life of the process so far.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        return None
    return None


def run_json_child(ctx: BenchContext, what: str, cmd: list[str], timeout: float) -> dict:
    """Run ``python -m <module> ...`` in its own process (chDB opens one data directory per
    process); its stderr passes through as progress, its last stdout line is a JSON object."""
    proc = subprocess.Popen([sys.executable, *cmd], stdout=subprocess.PIPE, stderr=None,
                            stdin=subprocess.DEVNULL, cwd=REPO_ROOT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish in {timeout:.0f}s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if proc.returncode != 0:
        raise BenchError(f"{what} exited with {proc.returncode} (its output is above)")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"{what} printed no result: {out[-2000:]!r}") from None
