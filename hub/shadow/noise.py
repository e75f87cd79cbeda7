"""A noise model in the spirit of Diffy: differences that a second instance of the primary version
(the *secondary*) also shows against the primary are noise, so that the differences reported for
primary vs shadow are the real ones.

Fields are JSON paths with array indices folded (``items[].updated_at``); ``$`` stands for the
whole body (not JSON, or only hashes compared). Per route, the model counts primary-vs-secondary
comparisons and how often each field differed. A primary-vs-shadow difference in a field is
noise when the field is declared nondeterministic (glob patterns, per route or for every route)
or when its primary-vs-secondary difference rate on that route is above ``noise_rate``, after
at least ``min_samples`` secondary comparisons of the route.

The model learns only from clean comparisons: primary and secondary both succeeded (2xx or 3xx)
with the same status. While the primary fails, its error bodies differ from the secondary's in
every field; learning from them would make real differences noise for as long as those
comparisons weigh in the rates. Comparisons that are not clean are counted (``skipped``) and
teach nothing. A status difference between primary and shadow is never noise (``make_pair``).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import orjson

__all__ = ["WHOLE_BODY", "json_diff", "body_diff", "clean_comparison", "NoiseModel", "Classified"]

WHOLE_BODY = "$"
_MISSING = object()


def _flatten(value, path: str, out: dict) -> None:
    if isinstance(value, dict):
        if not value:
            out[path or WHOLE_BODY] = "{}"
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        if not value:
            out[path or WHOLE_BODY] = "[]"
        for i, v in enumerate(value):
            _flatten(v, f"{path}[{i}]", out)
    else:
        out[path or WHOLE_BODY] = value


def _fold(path: str) -> str:
    """``items[3].ts`` -> ``items[].ts``."""
    out, i = [], 0
    while i < len(path):
        c = path[i]
        if c == "[":
            j = path.index("]", i)
            out.append("[]")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def json_diff(a, b) -> list[str]:
    """Folded paths of the leaves that differ (or exist on one side only) between two JSON values."""
    fa: dict = {}
    fb: dict = {}
    _flatten(a, "", fa)
    _flatten(b, "", fb)
    paths = set()
    for k in fa.keys() | fb.keys():
        va, vb = fa.get(k, _MISSING), fb.get(k, _MISSING)
        if va is _MISSING or vb is _MISSING or va != vb or type(va) is not type(vb):
            paths.add(_fold(k))
    return sorted(paths)


def body_diff(a: bytes, b: bytes, max_json_bytes: int = 1_000_000) -> list[str]:
    """Differing field paths of two response bodies; ``["$"]`` when they differ and are not both JSON."""
    if a == b:
        return []
    if len(a) <= max_json_bytes and len(b) <= max_json_bytes:
        try:
            return json_diff(orjson.loads(a), orjson.loads(b))
        except orjson.JSONDecodeError:
            pass
    return [WHOLE_BODY]


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern:
    """A field glob: ``*`` is any run of characters, ``[]`` is literal; a match covers sub-fields too."""
    body = re.escape(pattern).replace(r"\*", ".*")
    return re.compile(f"^{body}(?:$|[.\\[].*)")


def clean_comparison(primary_status: int, secondary_status: int) -> bool:
    """Whether a primary-vs-secondary comparison may teach the noise model: both succeeded (2xx or
    3xx) with the same status."""
    return primary_status == secondary_status and 200 <= primary_status < 400


@dataclass
class _RouteStats:
    compared: int = 0
    skipped: int = 0
    differed: dict = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class Classified:
    real: list[str]
    noise: list[str]


class NoiseModel:
    """Per-route, per-field primary-vs-secondary difference rates, and the classification they give."""

    def __init__(self, nondeterministic: Mapping[str, Sequence[str]] | None = None, *, noise_rate: float = 0.01,
                 min_samples: int = 1):
        # route template (or "*" for every route) -> glob patterns of folded field paths
        self.nondeterministic = {r: tuple(p) for r, p in (nondeterministic or {}).items()}
        self.noise_rate = noise_rate
        self.min_samples = min_samples
        self._routes: dict[str, _RouteStats] = defaultdict(_RouteStats)

    def observe_secondary(self, route: str, differing_fields: Iterable[str], *, primary_status: int,
                          secondary_status: int) -> bool:
        """One primary-vs-secondary comparison of ``route`` and the fields that differed in it.
        Learned from only when it is clean (``clean_comparison``); returns whether it was."""
        stats = self._routes[route]
        if not clean_comparison(primary_status, secondary_status):
            stats.skipped += 1
            return False
        stats.compared += 1
        for f in set(differing_fields):
            stats.differed[f] += 1
        return True

    def rates(self, route: str) -> dict[str, float]:
        stats = self._routes.get(route)
        if stats is None or stats.compared == 0:
            return {}
        return {f: n / stats.compared for f, n in stats.differed.items()}

    def compared(self, route: str) -> int:
        stats = self._routes.get(route)
        return 0 if stats is None else stats.compared

    def is_declared(self, route: str, path: str) -> bool:
        for key in (route, "*"):
            for pattern in self.nondeterministic.get(key, ()):
                if _glob(pattern).match(path):
                    return True
        return False

    def is_noise(self, route: str, path: str) -> bool:
        if self.is_declared(route, path):
            return True
        stats = self._routes.get(route)
        if stats is None or stats.compared < self.min_samples:
            return False
        n = stats.differed.get(path, 0)
        if n == 0 and path != WHOLE_BODY and stats.differed.get(WHOLE_BODY, 0):
            n = stats.differed[WHOLE_BODY]  # the secondary's bodies were compared whole
        return n / stats.compared > self.noise_rate

    def classify(self, route: str, differing_fields: Iterable[str]) -> Classified:
        real: list[str] = []
        noise: list[str] = []
        for f in differing_fields:
            (noise if self.is_noise(route, f) else real).append(f)
        return Classified(sorted(real), sorted(noise))

    def snapshot(self) -> dict:
        """Per route: clean comparisons learned from, those skipped (a failure or a status
        difference), and per-field rates (for status pages and the README's figures)."""
        return {route: {"compared": s.compared, "skipped": s.skipped, "rates": self.rates(route)}
                for route, s in self._routes.items()}
