"""Aggregation over seeds, in one place: per-run values, mean/std/95% CI.

Verdicts live in one place too: the claims ledger (mfbench.claims), never in a table."""
from __future__ import annotations

import math
import statistics
from typing import Iterable

import pandas as pd

# Columns that identify one run (its rows differ only in epoch/phase/split/metric/pred_mode).
RUN_KEYS = ["experiment", "dataset", "arch", "arch_detail", "algorithm", "schedule", "depth", "width",
            "batch_size", "lr", "seed"]


def read(paths) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p, dtype={"pred_mode": str}, keep_default_na=False) for p in paths],
                     ignore_index=True)


def final_values(df: pd.DataFrame, *, split: str = "test", metric: str = "accuracy",
                 selection: str = "last") -> pd.DataFrame:
    """One value per run and prediction mode.

    selection='last': the last epoch's value (fixed budget).
    selection='best_val': the value at the epoch whose *validation* accuracy (same
    prediction mode) is highest, so the test split never steers the choice.
    """
    keys = RUN_KEYS + ["pred_mode"]
    cur = df[(df.split == split) & (df.metric == metric)]
    if selection == "last":
        idx = cur.groupby(keys, dropna=False)["epoch"].idxmax()
        out = cur.loc[idx]
    elif selection == "best_val":
        val = df[(df.split == "val") & (df.metric == "accuracy")]
        best = val.loc[val.groupby(keys, dropna=False)["value"].idxmax(), keys + ["epoch"]]
        out = cur.merge(best, on=keys + ["epoch"])
    else:
        raise ValueError(f"unknown selection {selection!r}; allowed: last, best_val")
    return out.reset_index(drop=True)


def ci95(values) -> tuple[float, float, float, int]:
    """mean, std (ddof=1), half-width of the t-based 95% CI, n. NaN spread for n < 2."""
    s = pd.Series(values, dtype=float).dropna()
    n = len(s)
    mean = s.mean() if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, n
    from scipy import stats  # lazy: every CLI start would pay ~1 s for it

    std = s.std(ddof=1)
    return mean, std, stats.t.ppf(0.975, n - 1) * std / math.sqrt(n), n


def summarize(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """mean, std, n and 95% CI bounds of `value` over the rows of each group (e.g. seeds)."""
    rows = []
    for key, g in df.groupby(by, dropna=False, sort=True):
        mean, std, half, n = ci95(g[value])
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": mean, "std": std,
                     "n": n, "ci95_low": mean - half, "ci95_high": mean + half})
    return pd.DataFrame(rows)


def comparability(dataset: str) -> str:
    """Why a measured value cannot sit beside a published one as its reproduction ('' when it can)."""
    return "not comparable (synthetic data)" if dataset.startswith("synthetic-") else ""


def describe(xs: Iterable[float]) -> dict[str, float]:
    """Order statistics of repeated measurements of one quantity (timings): median, p90, min, max, n."""
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return {"median": statistics.median(xs), "p90": q[8], "min": xs[0], "max": xs[-1], "n": len(xs)}
