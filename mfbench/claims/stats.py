"""The claims ledger's statistics: one place, three tests.

- paired: per-unit (seed) differences a - b, their mean with a t-CI, judged against a
  non-inferiority margin (superior / non-inferior / inferior / inconclusive; `equivalent`
  when the whole CI lies within +-margin).
- absolute: a published single run against a prediction interval for ONE new run,
  mean +- t s sqrt(1 + 1/n): a perfect reproduction lands inside it 95 % of the time at any n
  (a CI of our mean would shrink with n and reject a perfect reproduction ever more often).
- ratio: paired log-ratios (seed or repeat) -> geometric-mean ratio with a t-CI, or a ratio
  of two fitted estimates with the delta method on the log scale; judged against 1 (direction)
  or against a published ratio within a stated tolerance factor.

Every result names its n; a verdict needs n >= min_n.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its interval: what a ledger row shows as 'measured'."""

    value: float
    low: float
    high: float
    n: int
    unit: str = ""
    what: str = ""  # e.g. "mean difference", "prediction interval", "geometric-mean ratio"


def _t(confidence: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, dof))


def mean_ci(values, confidence: float = 0.95) -> Estimate:
    v = np.asarray(values, dtype=float)
    n = len(v)
    m = float(v.mean()) if n else math.nan
    if n < 2:
        return Estimate(m, math.nan, math.nan, n)
    half = _t(confidence, n - 1) * float(v.std(ddof=1)) / math.sqrt(n)
    return Estimate(m, m - half, m + half, n, what="mean, t-CI")


def prediction_interval(values, confidence: float = 0.95) -> Estimate:
    """Interval that holds one new run with probability `confidence` (normal runs)."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    m = float(v.mean()) if n else math.nan
    if n < 2:
        return Estimate(m, math.nan, math.nan, n)
    half = _t(confidence, n - 1) * float(v.std(ddof=1)) * math.sqrt(1 + 1 / n)
    return Estimate(m, m - half, m + half, n, what="mean, prediction interval for one run")


def paired_verdict(diff: Estimate, margin: float) -> str:
    """Verdict on the CI of mean(a - b) against the non-inferiority margin (> 0)."""
    lo, hi = diff.low, diff.high
    if -margin < lo and hi < margin:  # the whole CI inside +-margin: no gap that matters, either way
        return "equivalent"
    if lo > 0:
        return "superior"
    if hi < -margin:
        return "inferior"
    if lo > -margin:
        return "non-inferior"
    return "inconclusive"


PAIRED_HOLDS = {
    "superior": {"superior"},
    "non-inferior": {"superior", "non-inferior", "equivalent"},
    "equivalent": {"equivalent"},
}


def absolute_verdict(pi: Estimate, published: float) -> str:
    if pi.low <= published <= pi.high:
        return "consistent"
    return "higher" if pi.low > published else "lower"  # measured higher / lower than published


def log_ratio(a, b, confidence: float = 0.95) -> Estimate:
    """Geometric-mean ratio a/b over paired units with a t-CI (computed on log a - log b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = (a > 0) & (b > 0)
    if not ok.all():
        raise ValueError("a ratio needs positive values on both sides")
    e = mean_ci(np.log(a) - np.log(b), confidence)
    return Estimate(math.exp(e.value), math.exp(e.low) if e.n > 1 else math.nan,
                    math.exp(e.high) if e.n > 1 else math.nan, e.n, "x", "geometric-mean ratio, t-CI")


def fitted_ratio(a: float, se_a: float, b: float, se_b: float, dof: int, confidence: float = 0.95) -> Estimate:
    """Ratio of two fitted estimates (e.g. slopes); delta method on the log scale.

    When either estimate's own interval includes 0 the ratio has no finite bound: the
    interval is reported as (-inf, inf) and the verdict comes out inconclusive."""
    t = _t(confidence, max(dof, 1))
    if a <= 0 or b <= 0 or a - t * se_a <= 0 or b - t * se_b <= 0:
        r = a / b if b else math.inf
        return Estimate(r, -math.inf, math.inf, dof + 2, "x", "ratio of fits (an estimate's CI includes 0)")
    r = a / b
    s = math.hypot(se_a / a, se_b / b)
    return Estimate(r, r * math.exp(-t * s), r * math.exp(t * s), dof + 2, "x", "ratio of fits, delta-method CI")


def ratio_verdict(est: Estimate, claim: str, threshold: float, tolerance: float) -> str:
    """`greater` / `less`: the CI lies above / below `threshold`. `consistent`: the CI lies within
    [threshold / tolerance, threshold * tolerance] (a published ratio, hardware aside)."""
    lo, hi = est.low, est.high
    if claim == "consistent":
        if threshold / tolerance <= lo and hi <= threshold * tolerance:
            return "consistent"
        if lo > threshold * tolerance:
            return "higher"
        if hi < threshold / tolerance:
            return "lower"
        return "inconclusive"
    if lo > threshold:
        return "greater"
    if hi < threshold:
        return "less"
    return "inconclusive"
