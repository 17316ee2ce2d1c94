"""Aggregation over seeds, in one place: reading run CSVs, leaving diverged runs out (and
saying so), per-run values, mean/std/95% CI.

Verdicts live in one place too: the claims ledger (mfbench.claims), never in a table.

Diverged runs: a run whose loss went non-finite stops and records a row metric="diverged",
value=1 (mfbench.guards.DIVERGED; metadata "status": "diverged"). Every aggregate first calls
`split_diverged(df) -> (kept, diverged_runs)`, averages `kept` only, and reports the runs it
left out (`note_diverged` adds n_diverged / diverged_seeds columns to a table; `describe` is
the one line printed)."""
from __future__ import annotations

import math
import statistics
from typing import Iterable

import pandas as pd

# Columns that identify one run (its rows differ only in epoch/phase/split/metric/pred_mode).
RUN_KEYS = ["experiment", "dataset", "arch", "arch_detail", "algorithm", "schedule", "depth", "width",
            "batch_size", "lr", "seed"]


NUMERIC = ["depth", "width", "batch_size", "lr", "seed", "epoch", "value"]
DIVERGED = "diverged"  # = mfbench.guards.DIVERGED (not imported: aggregation must not pay for torch)


def read(paths, **expect) -> pd.DataFrame:
    """Run CSVs as one frame, each checked by the one reader (`mfbench.results_io.read_runs`: a
    damaged, mixed or duplicated file is one line naming it). Text columns keep '' (never NaN);
    numeric columns are numbers, 'nan'/'inf' (a diverged loss) read as NaN/inf. `expect`: what the
    command expects (`same`: columns of one value over all files, `experiments`); by default any."""
    from mfbench import results_io

    return results_io.read_runs(list(paths), **{"same": (), "distinct_runs": False, **expect})


def split_diverged(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows of the runs that did not diverge, one row per diverged run).

    A run diverged when it carries a `diverged` row with a value > 0, or (files without the
    marker) any non-finite loss or accuracy. The second frame has the run keys, the first
    diverged epoch and `n_rows_dropped`; callers print `describe(...)` of it and add it to
    their table (`note_diverged`), so a left-out run is never silent."""
    keys = [k for k in RUN_KEYS if k in df]
    if df.empty or "metric" not in df:
        return df, pd.DataFrame(columns=[*keys, "epoch"])
    metric = df.metric.astype(str)
    value = pd.to_numeric(df.value, errors="coerce")
    bad = ((metric == DIVERGED) & (value > 0)) | (metric.str.startswith(("loss", "accuracy")) & ~value.map(math.isfinite))
    if not bad.any():
        return df, pd.DataFrame(columns=[*keys, "epoch"])
    runs = df.loc[bad, keys + ["epoch"]].groupby(keys, dropna=False, sort=True)["epoch"].min().reset_index()
    member = df[keys].merge(runs[keys].assign(_div=True), on=keys, how="left")["_div"].fillna(False).to_numpy(bool)
    return df[~member].reset_index(drop=True), runs


def describe(diverged: pd.DataFrame, what: str = "") -> str:
    """One line naming every diverged run left out ('' when none)."""
    if diverged.empty:
        return ""
    items = [f"{r.get('experiment', '')} {r.get('dataset', '')} {r.get('arch_detail', '')} {r.get('algorithm', '')} "
             f"lr={r.get('lr', '')} seed {r.get('seed', '')} (epoch {r.get('epoch', '')})".strip()
             for _, r in diverged.iterrows()]
    return f"{what + ': ' if what else ''}left out {len(items)} diverged run(s): " + "; ".join(items)


def note_diverged(table: pd.DataFrame, diverged: pd.DataFrame, by: list[str], *,
                  add_missing: bool = True) -> pd.DataFrame:
    """`table` (one row per cell, cells keyed by `by`) with n_diverged and diverged_seeds columns;
    a cell whose every run diverged gets a row of its own (n = 0), so it is never silently absent
    (add_missing=False for per-epoch summaries, where such a row has no epoch to sit at)."""
    keys = [k for k in by if k in diverged]
    out = table.copy()
    if diverged.empty:
        return out.assign(n_diverged=0, diverged_seeds="")
    per = diverged.groupby(keys, dropna=False, sort=True)["seed"].agg(
        n_diverged="size", diverged_seeds=lambda s: " ".join(str(int(x)) for x in sorted(s))).reset_index()
    missing = per.merge(out[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    missing = missing[missing._merge == "left_only"][keys]
    if len(missing) and add_missing:  # other key columns of such a row are unknown: '' (text), not NaN
        extra = missing.assign(n=0, **{k: "" for k in by if k not in keys})
        out = pd.concat([out, extra], ignore_index=True)
    out = out.merge(per, on=keys, how="left")
    out["n_diverged"] = out["n_diverged"].fillna(0).astype(int)
    out["diverged_seeds"] = out["diverged_seeds"].fillna("")
    return out


def read_kept(paths, what: str = "", **expect) -> tuple[pd.DataFrame, pd.DataFrame]:
    """read + split_diverged, printing the one line about what was left out (stderr)."""
    import sys

    kept, diverged = split_diverged(read(paths, **expect))
    if len(diverged):
        print(describe(diverged, what), file=sys.stderr)
    return kept, diverged


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


def order_stats(xs: Iterable[float]) -> dict[str, float]:
    """Order statistics of repeated measurements of one quantity (timings): median, p90, min, max, n."""
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return {"median": statistics.median(xs), "p90": q[8], "min": xs[0], "max": xs[-1], "n": len(xs)}
