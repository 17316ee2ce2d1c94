"""Table 5: training time per epoch, MF vs BP, from runs of the Table 3 models.

The workflow feeds it dedicated timing runs (rule table5_run), each alone on the device:
the Table 3 runs share it, so their epoch times would include the contention.
Each run CSV carries one `epoch_time` row per epoch (split train, unit s, the
training loop only, evaluation excluded). Per run: the median over its epochs after the
first `skip_epochs` (one-time costs: CUDA context, kernel autotuning, allocator growth);
then mean and 95% CI over seeds (`aggregate.summarize`), and each rule's ratio to BP
on the same dataset and model: mean and 95% CI of the per-seed ratios (seeds paired:
seed s of both rules ran the same configuration; the ratio of the seed means when no
seed is shared).

The paper's Table 5 states only that MF's epochs are shorter than BP's (no numbers
recovered); each non-BP row says whether the measured ratio supports that.
"""
from __future__ import annotations

import io
import os
import sys

import pandas as pd

from mfbench import aggregate, files
from mfbench.config import ConfigError
from mfbench.experiments import table_args

MODEL = ["dataset", "arch", "arch_detail"]
CELL = [*MODEL, "algorithm", "schedule"]
CLAIM = "MF epoch shorter than BP (paper Table 5; no numbers recovered)"
SOURCE = "arXiv 2501.09238 Table 5"


def device_of(path: str) -> str:
    """The device a run CSV was measured on, from the metadata JSON beside it ('unknown' without
    one; a damaged one is refused, never read as 'unknown')."""
    from mfbench import results_io

    if not os.path.lexists(files.meta_path(path)):
        return "unknown"
    meta = results_io.read_meta(path)
    return f"{meta.get('device', '?')} ({meta.get('device_name') or '?'})"


def per_run(df: pd.DataFrame, skip_epochs: int) -> pd.DataFrame:
    """Median epoch time of each run; runs too short to skip the warm-up keep all epochs."""
    if skip_epochs < 0:
        raise ConfigError(f"skip_epochs must be >= 0, got {skip_epochs}")
    et = df[(df.split == "train") & (df.metric == "epoch_time")]
    if et.empty:
        raise ConfigError("no epoch_time rows (split train) in the input CSVs; are they `mfbench train` outputs?")
    rows = []
    for key, g in et.groupby([*aggregate.RUN_KEYS, "device"], sort=True, dropna=False):
        kept = g[g.epoch > skip_epochs]
        kept = kept if len(kept) else g
        rows.append({**dict(zip([*aggregate.RUN_KEYS, "device"], key)), "value": kept.value.median(),
                     "epochs_timed": len(kept)})
    return pd.DataFrame(rows)


def table5(df: pd.DataFrame, skip_epochs: int = 1) -> pd.DataFrame:
    runs = per_run(df, skip_epochs)
    t = aggregate.summarize(runs, CELL)
    t = t.merge(runs.groupby(CELL).agg(epochs_timed=("epochs_timed", "median"),
                                       device=("device", lambda d: "; ".join(sorted(set(d))))).reset_index(), on=CELL)
    t = t.rename(columns={"mean": "mean_s", "std": "std_s", "ci95_low": "ci95_low_s", "ci95_high": "ci95_high_s"})
    bp_runs = runs[runs.algorithm == "bp"][[*MODEL, "seed", "value"]].rename(columns={"value": "bp"})
    bp_mean = t[t.algorithm == "bp"][[*MODEL, "mean_s"]].rename(columns={"mean_s": "bp_mean"})
    out = []
    for _, r in t.merge(bp_mean, on=MODEL, how="left").iterrows():
        row = r.drop("bp_mean").to_dict()
        row.update(ratio_to_bp=r.mean_s / r.bp_mean, ratio_ci95_low=float("nan"), ratio_ci95_high=float("nan"),
                   published="", source="")
        if r.algorithm != "bp":
            mine = runs[(runs[CELL] == r[CELL]).all(axis=1)]  # this cell's runs, one per seed
            paired = mine.merge(bp_runs, on=[*MODEL, "seed"])
            if len(paired):  # else (no BP seed in common) the ratio of the means stands alone
                mean, _, half, _ = aggregate.ci95(paired.value / paired.bp)
                row.update(ratio_to_bp=mean, ratio_ci95_low=mean - half, ratio_ci95_high=mean + half)
            if r.algorithm == "mf":
                row.update(published=CLAIM, source=SOURCE)  # judged in the claims ledger
        out.append(row)
    cols = [*CELL, "n", "epochs_timed", "mean_s", "std_s", "ci95_low_s", "ci95_high_s", "ratio_to_bp",
            "ratio_ci95_low", "ratio_ci95_high", "published", "source", "device"]
    return pd.DataFrame(out).reindex(columns=cols)


def read_runs(inputs: list[str]) -> pd.DataFrame:
    df = aggregate.read(inputs, same=("experiment",), distinct_runs=True, source=True)
    device = {p: device_of(p) for p in inputs}
    return df.assign(device=df.pop("source").map(device))


def main(inputs: list[str], out: str, figure: str, skip_epochs: int) -> pd.DataFrame:
    kept, diverged = aggregate.split_diverged(read_runs(inputs))
    if len(diverged):
        print(aggregate.describe(diverged, "table5"), file=sys.stderr)
    table = aggregate.note_diverged(table5(kept, skip_epochs), diverged, CELL)
    files.write_csv(table, out)
    from mfbench.plots.timing import epoch_time_figure

    epoch_time_figure(io.StringIO(table.to_csv(index=False)), figure)  # the CSV's text: it is renamed in at the end
    return table


def add_command(sub) -> None:
    p = sub.add_parser("table5", help="Table 5: epoch time MF vs BP from timing run CSVs, + figure")
    table_args(p, inputs="run CSVs written by `mfbench train` (the workflow's exclusive table5 timing runs)")
    p.add_argument("--skip-epochs", type=int, default=1,
                   help="leading epochs left out of each run's median (one-time warm-up costs)")
    p.set_defaults(func=lambda a: main(a.inputs, a.out, a.figure, a.skip_epochs))
