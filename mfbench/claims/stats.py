"""The claims ledger's statistics, as the analysis plan (registry/README.md) states them.

Every claim becomes ONE question about ONE interval: the two-sided (1 - 2 alpha) t-interval of
an estimate (a mean of paired differences, a mean of runs, or a log ratio), alpha = 0.025 one-sided
by default, i.e. the familiar 95 % interval. A claim is a region for the true value:

- `above b`:  superior (b = superiority margin, default 0), non-inferior (b = -margin), ratio greater;
- `below b`:  ratio less;
- `inside [lo, hi]`: equivalent (+-margin, TOST), a published value reproduced (published +- tolerance,
  TOST), a ratio consistent with a published one (within a factor).

Each question has two one-sided p-values: `p_hold` (H0: the claim is false; small -> it holds) and
`p_refute` (H0: the claim is true at its boundary; small -> it is refuted). Verdicts are read from
these p-values after Holm's adjustment within the claim's family, so there is exactly one decision
rule per claim and no label can shadow another: a true superiority claim holds more often, never
less, as seeds are added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.025  # one-sided level of every decision; the two-sided 95 % interval shows it


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its interval: what a ledger row shows as 'measured'.

    `center`, `se`, `dof` are on the test scale (the log scale for ratios, `log=True`)."""

    value: float
    low: float
    high: float
    n: int
    unit: str = ""
    what: str = ""  # e.g. "mean difference", "geometric-mean ratio"
    center: float = math.nan
    se: float = math.nan
    dof: int = 0
    log: bool = False

    @property
    def sd(self) -> float:
        """Spread of one unit (seed) on the test scale, for power planning."""
        return self.se * math.sqrt(self.n) if self.n > 0 else math.nan


def _t(q: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(q, dof))


def mean_ci(values, alpha: float = ALPHA) -> Estimate:
    """Mean with its two-sided (1 - 2 alpha) t-interval."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    m = float(v.mean()) if n else math.nan
    if n < 2:
        return Estimate(m, math.nan, math.nan, n, center=m)
    se = float(v.std(ddof=1)) / math.sqrt(n)
    half = _t(1 - alpha, n - 1) * se
    return Estimate(m, m - half, m + half, n, what="mean, t-CI", center=m, se=se, dof=n - 1)


def log_ratio(a, b, alpha: float = ALPHA) -> Estimate:
    """Geometric-mean ratio a/b over paired units with a t-CI (computed on log a - log b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not ((a > 0) & (b > 0)).all():
        raise ValueError("a ratio needs positive values on both sides")
    e = mean_ci(np.log(a) - np.log(b), alpha)
    return Estimate(math.exp(e.value), math.exp(e.low) if e.n > 1 else math.nan,
                    math.exp(e.high) if e.n > 1 else math.nan, e.n, "x", "geometric-mean ratio, t-CI",
                    e.center, e.se, e.dof, log=True)


def fitted_ratio(a: float, se_a: float, b: float, se_b: float, dof: int, alpha: float = ALPHA) -> Estimate:
    """Ratio of two fitted estimates (e.g. slopes); delta method on the log scale.

    When either estimate's own interval includes 0 the ratio has no finite bound: the interval is
    (-inf, inf), the standard error infinite, and no verdict can come of it."""
    t = _t(1 - alpha, max(dof, 1))
    if a <= 0 or b <= 0 or a - t * se_a <= 0 or b - t * se_b <= 0:
        r = a / b if b else math.inf
        return Estimate(r, -math.inf, math.inf, dof + 2, "x", "ratio of fits (an estimate's CI includes 0)",
                        math.log(r) if 0 < r < math.inf else math.nan, math.inf, max(dof, 1), log=True)
    r = a / b
    s = math.hypot(se_a / a, se_b / b)
    return Estimate(r, r * math.exp(-t * s), r * math.exp(t * s), dof + 2, "x", "ratio of fits, delta-method CI",
                    math.log(r), s, max(dof, 1), log=True)


# --- the decision: one region per claim ------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """Where the claim puts the true value, on the estimate's test scale: `above` lo, `below` hi, or
    `inside` [lo, hi]."""

    kind: str
    lo: float = -math.inf
    hi: float = math.inf


def _p_above(e: Estimate, b: float) -> float:
    """One-sided p of H0: true value <= b (small: the value is above b)."""
    from scipy import stats

    if not (math.isfinite(e.center) and e.se >= 0 and e.dof > 0):
        return math.nan
    if not math.isfinite(b):
        return 0.0 if b < 0 else 1.0
    if e.se == 0:  # no spread at all (exact quantities, e.g. bytes held): the side of b decides
        return 0.0 if e.center > b else (1.0 if e.center < b else 0.5)
    return float(stats.t.sf((e.center - b) / e.se, e.dof)) if math.isfinite(e.se) else 0.5


def _p_below(e: Estimate, b: float) -> float:
    p = _p_above(e, b)
    return math.nan if math.isnan(p) else (0.5 if not math.isfinite(e.se) else 1.0 - p)


def p_values(e: Estimate, r: Region) -> tuple[float, float]:
    """(p_hold, p_refute) of a claim region. `inside`: p_hold is TOST's (the larger of the two
    one-sided p), p_refute the smaller of 'below lo' and 'above hi' (the interval wholly outside)."""
    if r.kind == "above":
        return _p_above(e, r.lo), _p_below(e, r.lo)
    if r.kind == "below":
        return _p_below(e, r.hi), _p_above(e, r.hi)
    if r.kind == "inside":
        return max(_p_above(e, r.lo), _p_below(e, r.hi)), min(_p_below(e, r.lo), _p_above(e, r.hi))
    raise ValueError(f"unknown region kind {r.kind!r}")


def decide(p_hold: float, p_refute: float, alpha: float = ALPHA) -> str:
    """'holds' / 'refuted' / 'inconclusive' from (adjusted) p-values; the two cannot both be small
    (the regions are disjoint), and neither is ever looked at before the other."""
    if p_hold < alpha:
        return "holds"
    if p_refute < alpha:
        return "refuted"
    return "inconclusive"


def seeds_to_decide(e: Estimate, r: Region, alpha: float = ALPHA, cap: int = 100_000) -> int | None:
    """Paired units (seeds) at which, at the observed mean and spread, the interval would stop
    touching the region's nearest boundary: how many seeds would decide an inconclusive claim.
    None when it cannot be said (no spread, a fitted ratio, the mean on the boundary)."""
    if not (e.n >= 2 and math.isfinite(e.sd) and e.sd > 0 and math.isfinite(e.center)):
        return None
    d = min(abs(e.center - b) for b in (r.lo, r.hi) if math.isfinite(b))
    if d <= 0:
        return None
    n = max(2, int(math.ceil((_t(1 - alpha, 10_000) * e.sd / d) ** 2)))  # normal start, then t
    while n <= cap and _t(1 - alpha, n - 1) * e.sd / math.sqrt(n) >= d:
        n += 1
    return n if n <= cap else None


def rounding_half_unit(value: float, printed: str | None = None) -> float:
    """Half a unit of the last printed digit of a published number ('98.6' -> 0.05, '1.40' -> 0.005).
    Without the printed text, the shortest repr of the number stands for it."""
    s = (printed or repr(float(value))).strip()
    if "e" in s.lower():
        return 0.0
    decimals = len(s.split(".")[1]) if "." in s else 0
    if printed is None and s.endswith(".0"):
        decimals = 0
    return 0.5 * 10.0 ** (-decimals)


def holm(pvalues, alpha: float = ALPHA) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels), NaN kept as NaN (rows without a test)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method="holm")[1]
    return out


def paired_seeds_for_power(effect: float, sd: float, alpha: float = ALPHA, power: float = 0.8,
                           two_sided_equivalence: bool = False) -> int | None:
    """Paired units for `power` of a one-sided t-test at level alpha to decide a claim whose true value
    sits `effect` away from its boundary (statsmodels). TOST at a true value in the middle of a
    +-margin region needs each one-sided test at power (1 + power) / 2."""
    from statsmodels.stats.power import TTestPower

    if not (sd > 0 and effect > 0 and math.isfinite(sd)):
        return None
    pw = (1 + power) / 2 if two_sided_equivalence else power
    n = TTestPower().solve_power(effect_size=effect / sd, alpha=alpha, power=pw, alternative="larger")
    return max(2, int(math.ceil(float(np.atleast_1d(n)[0]))))
