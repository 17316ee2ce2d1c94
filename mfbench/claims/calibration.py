"""Calibration of the analysis plan by seeded simulation, through the ledger's own decision
(`ledger.estimate` + `ledger.verdict_of`, the code every ledger row goes through).

`python -m mfbench.claims.calibration [trials]` prints the table (kind, scenario, n, rate); the
tests in tests/test_claims_calibration.py assert on the same table.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd

from mfbench import claims
from mfbench.claims import ledger

SEED = 20261202
BASE = dict(id="sim", paper="sim", version="2501.09238v1", family="sim", where="sim", statement="sim",
            flag="confirmed", artefact="sim", quantity="final_accuracy")


def _claim(**kw) -> claims.Claim:
    return claims.parse({**BASE, **kw})


SUPERIOR = _claim(test="paired", claim="superior", a={"algorithm": "a"}, b={"algorithm": "b"})
NONINF = _claim(test="paired", claim="non-inferior", a={"algorithm": "a"}, b={"algorithm": "b"}, margin=0.005)
EQUIV = _claim(test="paired", claim="equivalent", a={"algorithm": "a"}, b={"algorithm": "b"}, margin=0.005)
# a two-decimal published fraction (the FF study's style): tolerance 0.5 pp + rounding 0.5 pp
REPRO = _claim(test="absolute", claim="reproduced", a={"algorithm": "a"},
               published={"value": 0.93, "unit": "fraction", "printed": "0.93"})
# a Table 3 style published percent (98.69 %): tolerance 0.5 pp + rounding 0.005 pp
REPRO_PCT = _claim(test="absolute", claim="reproduced", a={"algorithm": "a"},
                   published={"value": 98.69, "unit": "percent"})
GREATER = _claim(test="ratio", claim="greater", quantity="epoch_time", a={"algorithm": "a"}, b={"algorithm": "b"})
CONSIST = _claim(test="ratio", claim="consistent", quantity="epoch_time", a={"algorithm": "a"},
                 b={"algorithm": "b"}, published={"value": 2.0, "unit": "x"}, tolerance={"value": 1.5, "unit": "x"})


def _rate(c, draw, label, n, trials, rng) -> float:
    hits = 0
    for _ in range(trials):
        hits += ledger.verdict_of(c, ledger.estimate(c, *draw(rng, n))) in (label if isinstance(label, tuple)
                                                                           else (label,))
    return hits / trials


def scenarios():
    """(kind, scenario, claim, draw(rng, n) -> sides, verdict(s) counted, kind of check)."""
    sd = 0.002  # paired sd 0.2 pp
    w = 0.005 + 0.005  # REPRO's tolerance + rounding half unit
    ratio_sd = 0.1

    def paired(mu):
        return lambda rng, n: (mu + rng.normal(0, sd, n), np.zeros(n))

    def ratio(r):
        def draw(rng, n):
            b = rng.lognormal(0, 0.3, n)
            return b * r * rng.lognormal(0, ratio_sd, n), b
        return draw

    def repro(mu):
        return lambda rng, n: (rng.normal(mu, 0.003, n),)

    return [
        ("superior", "true gap 0 (boundary): false 'superior'", SUPERIOR, paired(0.0), "superior", "alpha"),
        ("superior", "true gap 0 (boundary): false 'not superior'", SUPERIOR, paired(0.0), "not superior", "alpha"),
        ("non-inferior", "true gap -margin: false 'non-inferior'", NONINF, paired(-0.005), "non-inferior", "alpha"),
        ("equivalent", "true gap +margin: false 'equivalent'", EQUIV, paired(0.005), "equivalent", "alpha"),
        ("reproduced", "true mean at published + tol + rounding: false 'reproduced'", REPRO, repro(0.93 + w),
         "reproduced", "alpha"),
        ("ratio greater", "true ratio 1 (boundary): false 'greater'", GREATER, ratio(1.0), "greater", "alpha"),
        ("ratio consistent", "true ratio at published x tolerance: false 'consistent'", CONSIST, ratio(3.0),
         "consistent", "alpha"),
        ("superior", "true gain +0.30 pp, paired sd 0.2 pp: holds", SUPERIOR, paired(0.003), "superior", "power"),
        ("reproduced", "perfect reproduction of a rounded value: 'reproduced' or 'inconclusive'", REPRO,
         lambda rng, n: (rng.normal(0.93 + rng.uniform(-0.005, 0.005), 0.003, n),), ("reproduced", "inconclusive"),
         "coverage"),
        ("reproduced", "98.69 %: shortfall of 2x tolerance (1 pp), seed sd 0.5 pp: 'not reproduced'", REPRO_PCT,
         lambda rng, n: (rng.normal(0.9869 - 0.01, 0.005, n),), "not reproduced", "detection"),
    ]


def table(trials: int = 2000, ns=(5, 10, 20, 40), seed: int = SEED) -> pd.DataFrame:
    rows = []
    for i, (kind, scen, c, draw, label, check) in enumerate(scenarios()):
        for n in ns:
            rng = np.random.default_rng([seed, i, n])
            rows.append({"kind": kind, "scenario": scen, "check": check, "n": n,
                         "rate": _rate(c, draw, label, n, trials, rng), "trials": trials})
    return pd.DataFrame(rows)


def mc_slack(p: float, trials: int, z: float = 3.0) -> float:
    """Monte-Carlo error allowance: z binomial standard errors."""
    return z * math.sqrt(p * (1 - p) / trials)


if __name__ == "__main__":  # pragma: no cover - a printing entry point
    t = table(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(t.to_string(index=False))
