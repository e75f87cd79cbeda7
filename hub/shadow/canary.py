"""Canary judgment: canary vs baseline (primary legs) per route and metric, with a rank test and an
effect size, stored as a verdict with its confidence.

- ``latency``: Mann-Whitney U (two samples, ties averaged, normal approximation with tie
  correction and continuity correction), one-sided "canary slower"; effect size Cliff's delta
  (= rank-biserial correlation) in [-1, 1], positive when the canary is slower.
- ``error_rate``: two-proportion z test (pooled variance), one-sided "canary errs more"; effect size
  Cohen's h.

Both tests come from ``hub.stats``, as does the abort judge's control-group test.

Verdict, with ``alpha`` and the smallest effect that matters (``min_delta`` for latency, 0.147
is Romano's "small"; ``min_h`` for errors, 0.2 is Cohen's "small"):

- ``fail``: the canary is worse with p < alpha and the effect reaches the minimum; confidence 1 - p.
- ``pass``: non-inferiority shown: the effect's upper confidence bound is below the minimum,
  i.e. Phi((min - effect) / se) >= 1 - alpha; confidence is that Phi value.
- ``inconclusive``: neither (or fewer than ``min_samples`` on a side); confidence is the larger
  of the two.

Legs the client caused (status 408, or an error starting with ``client:``: a client that went away
or sent its body too slowly) say nothing about the backend: they are left out of both samples and
counted apart (``canary_client_legs``, ``baseline_client_legs``).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from hub.records.rows import compile_row
from hub.stats import MannWhitney, Proportions, mann_whitney_u, normal_cdf, two_proportions

__all__ = ["mann_whitney_u", "two_proportions", "MannWhitney", "Proportions", "Verdict", "judge_latency",
           "judge_errors", "judge_samples", "judge_canary", "store_verdicts", "VERDICT_COLUMNS", "client_caused", "sample", "CLIENT_ERROR_PREFIX"]

CLIENT_ERROR_PREFIX = "client:"  # a leg's error that the client caused (the gateway writes it so)


def client_caused(status: int, error: str) -> bool:
    """True for a leg the client caused: status 408 or an error starting with ``client:``."""
    return status == 408 or (error or "").startswith(CLIENT_ERROR_PREFIX)


def sample(route: str, leg: str, backend: str, latency_ms: float, status: int, error: str) -> tuple:
    """A leg as a row of ``judge_samples``: a backend error is a 5xx, no status (no answer) or an
    error text; a leg the client caused is marked so, and is neither."""
    by_client = client_caused(status, error)
    return (route, leg, backend, latency_ms, not by_client and (status >= 500 or status == 0 or bool(error)),
            by_client)


@dataclass
class Verdict:
    experiment_id: str
    route: str
    metric: str                # latency | error_rate
    verdict: str               # pass | fail | inconclusive
    confidence: float
    p_value: float             # one-sided: canary worse
    effect_size: float         # Cliff's delta (latency) or Cohen's h (error_rate)
    effect_kind: str           # cliffs_delta | cohens_h
    canary_samples: int
    baseline_samples: int
    canary_value: float        # median latency ms, or error rate
    baseline_value: float
    canary_backend: str = ""
    baseline_backend: str = ""
    judged_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    canary_client_legs: int = 0    # legs the client caused, left out of the samples (not stored)
    baseline_client_legs: int = 0

    def row(self) -> tuple:
        """The verdict as a ``canary_verdicts`` row, in ``VERDICT_COLUMNS`` order (built by name)."""
        return _verdict_row(self)


VERDICT_COLUMNS = ("judged_at", "experiment_id", "route", "metric", "verdict", "confidence", "p_value",
                   "effect_size", "effect_kind", "canary_samples", "baseline_samples", "canary_value",
                   "baseline_value", "canary_backend", "baseline_backend")
#: Each ``canary_verdicts`` column's value, by name: an expression of the verdict ``v``.
VERDICT_VALUES = {
    "judged_at": "v.judged_at", "experiment_id": "v.experiment_id", "route": "v.route", "metric": "v.metric",
    "verdict": "v.verdict", "confidence": "v.confidence", "p_value": "v.p_value", "effect_size": "v.effect_size",
    "effect_kind": "v.effect_kind", "canary_samples": "v.canary_samples", "baseline_samples": "v.baseline_samples",
    "canary_value": "v.canary_value", "baseline_value": "v.baseline_value", "canary_backend": "v.canary_backend",
    "baseline_backend": "v.baseline_backend",
}
_verdict_row = compile_row("canary_verdicts", VERDICT_COLUMNS, VERDICT_VALUES, "v")


def _decide(p: float, effect: float, se: float, minimum: float, alpha: float, enough: bool) -> tuple[str, float]:
    worse = 1.0 - p
    non_inferior = normal_cdf((minimum - effect) / se) if se > 0 and math.isfinite(se) else 0.0
    if not enough:
        return "inconclusive", 0.0
    if p < alpha and effect >= minimum:
        return "fail", worse
    if non_inferior >= 1.0 - alpha:
        return "pass", non_inferior
    return "inconclusive", max(worse, non_inferior)


def _median(v: Sequence[float]) -> float:
    s = sorted(v)
    n = len(s)
    if n == 0:
        return 0.0
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def judge_latency(canary: Sequence[float], baseline: Sequence[float], *, experiment_id: str = "", route: str = "",
                  alpha: float = 0.05, min_delta: float = 0.147, min_samples: int = 20) -> Verdict:
    mw = mann_whitney_u(canary, baseline)
    verdict, confidence = _decide(mw.p_greater, mw.delta, mw.se_delta, min_delta, alpha,
                                  min(len(canary), len(baseline)) >= min_samples)
    return Verdict(experiment_id, route, "latency", verdict, confidence, mw.p_greater, mw.delta, "cliffs_delta",
                   len(canary), len(baseline), _median(canary), _median(baseline))


def judge_errors(canary_errors: int, canary_n: int, baseline_errors: int, baseline_n: int, *,
                 experiment_id: str = "", route: str = "", alpha: float = 0.05, min_h: float = 0.2,
                 min_samples: int = 20) -> Verdict:
    pr = two_proportions(canary_errors, canary_n, baseline_errors, baseline_n)
    verdict, confidence = _decide(pr.p_greater, pr.h, pr.se_h, min_h, alpha, min(canary_n, baseline_n) >= min_samples)
    return Verdict(experiment_id, route, "error_rate", verdict, confidence, pr.p_greater, pr.h, "cohens_h",
                   canary_n, baseline_n, pr.p1, pr.p2)


def judge_samples(experiment_id: str, rows: Sequence[Sequence], **options) -> list[Verdict]:
    """Verdicts from ``(route, leg, backend, latency_ms, is_error[, client_caused])`` rows: per route,
    latency and errors. A row marked client-caused is counted apart, in neither sample."""
    per: dict[str, dict] = {}
    for row in rows:
        route, leg, backend, latency, error = row[:5]
        d = per.setdefault(route, {"canary": [], "primary": [], "errors": {"canary": 0, "primary": 0},
                                   "backends": {"canary": set(), "primary": set()},
                                   "client": {"canary": 0, "primary": 0}})
        if leg not in ("canary", "primary"):
            continue
        if len(row) > 5 and row[5]:
            d["client"][leg] += 1
            continue
        d[leg].append(float(latency))
        d["errors"][leg] += 1 if error else 0
        d["backends"][leg].add(backend)
    lat_opts = {k: v for k, v in options.items() if k in ("alpha", "min_delta", "min_samples")}
    err_opts = {k: v for k, v in options.items() if k in ("alpha", "min_h", "min_samples")}
    out = []
    for route, d in sorted(per.items()):
        if not d["canary"]:
            continue
        backends = (",".join(sorted(d["backends"]["canary"])), ",".join(sorted(d["backends"]["primary"])))
        for v in (judge_latency(d["canary"], d["primary"], experiment_id=experiment_id, route=route, **lat_opts),
                  judge_errors(d["errors"]["canary"], len(d["canary"]), d["errors"]["primary"], len(d["primary"]),
                               experiment_id=experiment_id, route=route, **err_opts)):
            v.canary_backend, v.baseline_backend = backends
            v.canary_client_legs, v.baseline_client_legs = d["client"]["canary"], d["client"]["primary"]
            out.append(v)
    return out


def judge_canary(store, experiment_id: str, *, gateway: str | None = None, **options) -> list[Verdict]:
    """Verdicts for an experiment's canary legs against its primary legs, per route, from ``requests``."""
    where = "experiment_id = {e:String} AND leg IN ('primary', 'canary')"
    params = {"e": experiment_id}
    if gateway:
        where += " AND gateway = {g:String}"
        params["g"] = gateway
    rows = store.query(
        f"SELECT route, leg, backend, latency_ms, status, error "
        f"FROM {store.database}.requests WHERE {where}", parameters=params).result_rows
    return judge_samples(experiment_id, [sample(*row) for row in rows], **options)


def store_verdicts(store, verdicts: Sequence[Verdict]) -> int:
    if verdicts:
        token = "canary:" + str(uuid.uuid4())
        store.insert(f"{store.database}.canary_verdicts", [v.row() for v in verdicts], VERDICT_COLUMNS, token=token)
    return len(verdicts)
