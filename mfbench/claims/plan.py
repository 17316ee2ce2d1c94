"""Power planning (`mfbench claims plan`): paired seeds per claim for a given power at its margin,
from the spread of pilot runs (the analysis plan, registry/README.md, section 'Seeds').

The spread comes from the pilot; the effect the study must resolve comes from the claim, never from
the pilot's own estimate (that would plan the study to confirm the pilot), except for ratio
`greater`/`less` claims, which declare no margin: those are planned at the pilot's observed effect
and say so.
"""
from __future__ import annotations

import math

import pandas as pd

from mfbench.claims import Claim, ledger, stats

FLOOR = 10  # the suite never plans fewer paired seeds than this (a t-interval from fewer is wide at any spread)


def _effect(c: Claim, r: pd.Series, st: ledger.Settings) -> tuple[float, bool, str]:
    """(distance of the planned true value from the claim's boundary on the test scale, TOST?, basis)."""
    unit = ledger.QUANTITIES[c.quantity].unit
    reg, margin, text = ledger.region(c, unit, st)
    if c.test == "paired":
        if c.claim == "equivalent":
            return margin, True, f"true gap 0, +-{ledger._fmt_amount(margin, unit)}"
        return margin, False, (f"true gain {ledger._fmt_amount(margin, unit)} (the margin)" if c.claim == "superior"
                               else f"true gap 0 vs margin {ledger._fmt_amount(margin, unit)}")
    if c.test == "absolute":
        return (reg.hi - reg.lo) / 2, True, f"true mean = published, {text}"
    if c.claim == "consistent":
        return (reg.hi - reg.lo) / 2, True, f"true ratio = published, {text}"
    b = reg.lo if reg.kind == "above" else reg.hi
    obs = math.log(r.measured) if r.measured > 0 else math.nan
    return abs(obs - b), False, f"pilot's own effect {r.measured:.3g}x vs {math.exp(b):g}x (no margin declared)"


def plan(claims: list[Claim], pilot: pd.DataFrame, st: ledger.Settings = ledger.Settings(),
         power: float = 0.8) -> pd.DataFrame:
    """One row per claim and protocol the pilot measured: its spread, the planned effect, and the paired
    seeds for `power` (at least FLOOR in the last column)."""
    led = ledger.judge(claims, pilot, ledger.Settings(**{**st.__dict__, "min_n": 2, "allow_synthetic": True}))
    by_id = {c.id: c for c in claims}
    rows = []
    for r in led.itertuples():
        if pd.isna(r.measured):
            continue
        c = by_id[r.id]
        sd = r.sd if hasattr(r, "sd") else math.nan
        effect, tost, basis = _effect(c, pd.Series(r._asdict()), st)
        seeds = stats.paired_seeds_for_power(effect, sd, st.alpha, power, tost) if pd.notna(sd) else None
        rows.append({"id": r.id, "protocol": r.protocol, "test": f"{c.test} {c.claim}", "pilot_n": int(r.n),
                     "pilot_sd": sd, "unit": "log" if c.test == "ratio" else r.unit, "planned": basis,
                     f"seeds_for_{int(100 * power)}pct": seeds,
                     "seeds_planned": None if seeds is None else max(FLOOR, seeds)})
    return pd.DataFrame(rows)


def render(tab: pd.DataFrame) -> str:
    if tab.empty:
        return "no claim could be planned from this pilot (no claim's runs matched)"
    t = tab.copy()
    t["pilot_sd"] = [f"{100 * s:.3f} pp" if u == "fraction" else f"{s:.3g} {u}" for s, u in zip(t.pilot_sd, t.unit)]
    t = t.drop(columns=["unit"]).fillna("n/a")
    return (f"paired seeds per claim for the power named, one-sided alpha = {ledger.Settings().alpha:g}, "
            f"at the pilot's spread (statsmodels TTestPower); planned = at least {FLOOR}\n"
            + t.to_string(index=False))
