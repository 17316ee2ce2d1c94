"""Mono-Forward v2 (arXiv 2501.09238v2) on an MLP-Mixer, PathMNIST: "stronger results on PathMNIST than
backpropagation while requiring only 31 % of backpropagation's memory".

The runs are ordinary `mfbench train` runs (arch mixer, paired seeds) and `mfbench memory-depth --seeds`
measurements of the same net (one depth, each seed a fresh model, one process per rule). This module only
tabulates them: `mfbench mixer-table` -> one CSV (accuracy per rule and mode, the paired MF - BP
differences, peak memory per rule and the paired MF / BP ratio beside the published 0.31) and a figure
drawn from that CSV alone. The per-seed values are the claims ledger's own quantities, so the table and
the ledger read the same numbers.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mfbench import aggregate, files, reference
from mfbench.claims.quantities import final_accuracy
from mfbench.claims.quantities_mfv2 import judged_metric
from mfbench.config import ConfigError

CELL = ["dataset", "arch", "arch_detail"]
TABLE = ["quantity", *CELL, "algorithm", "pred_mode", "metric", "n", "mean", "std", "ci95_low", "ci95_high", "unit",
         "published", "source", "note"]
# every peak `memory-depth` records, by device (as memory.DEPTH_METRICS, which imports torch-side modules lazily only)
MEMORY_METRICS = ("peak_allocated_bytes", "held_activation_peak_bytes", "peak_rss_bytes", "nvml_process_bytes")


def _accuracy(runs: pd.DataFrame) -> tuple[list[dict], dict]:
    """Test accuracy per (cell, rule, mode) over seeds, and the per-seed values for the differences."""
    rows, per = [], {}
    for key, g in runs.groupby([*CELL, "algorithm", "pred_mode"], sort=True):
        if not key[-1]:  # training rows (loss, time) name no prediction mode
            continue
        v = final_accuracy(g, "paper")
        if v.empty:
            continue
        per[key] = v
        mean, std, half, n = aggregate.ci95(v)
        rows.append({"quantity": "test_accuracy", **dict(zip([*CELL, "algorithm", "pred_mode"], key)),
                     "metric": "accuracy", "n": n, "mean": mean, "std": std, "ci95_low": mean - half,
                     "ci95_high": mean + half, "unit": "fraction"})
    for (*cell, alg, mode), v in per.items():  # every MF mode against BP, paired by seed
        bp = next((b for (*c, a, _), b in per.items() if c == cell and a == "bp"), None)
        if alg == "bp" or bp is None:
            continue
        d = (v - bp).dropna()
        mean, std, half, n = aggregate.ci95(d)
        rows.append({"quantity": "test_accuracy_diff_vs_bp", **dict(zip(CELL, cell)), "algorithm": alg,
                     "pred_mode": mode, "metric": "accuracy", "n": n, "mean": mean, "std": std,
                     "ci95_low": mean - half, "ci95_high": mean + half, "unit": "fraction",
                     "note": "paired by seed: a - bp"})
    return rows, per


def _peaks(mem: pd.DataFrame, metric: str) -> dict:
    """Per (cell, rule): the per-seed peak of `metric`."""
    ok = mem[(mem.metric == metric) & (mem.status.astype(str) == "ok")] if "status" in mem else mem[mem.metric == metric]
    return {key: g.groupby("seed")["value"].max() for key, g in ok.groupby([*CELL, "algorithm"], sort=True)}


def _memory(mem: pd.DataFrame) -> list[dict]:
    """Peak memory per rule over seeds, and the paired MF / BP ratio (geometric mean, t-interval on the log
    scale, as the ledger's ratio test), the published ratio beside the measure the ledger judges
    (`peak_train_memory`: the allocator peak on CUDA, the bytes held for backward on a CPU)."""
    ref = reference.load(study="mono-forward", artefact="pathmnist_mixer", metric="peak_memory_ratio_mf_over_bp")
    judged = judged_metric(mem)
    rows = []
    for metric in [m for m in MEMORY_METRICS if (mem.metric == m).any()]:
        per = _peaks(mem, metric)
        for key, v in per.items():
            mean, std, half, n = aggregate.ci95(v)
            rows.append({"quantity": "peak_memory", **dict(zip([*CELL, "algorithm"], key)), "metric": metric,
                         "n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half,
                         "unit": "bytes"})
        for (*cell, alg), v in per.items():
            bp = per.get((*cell, "bp"))
            if alg == "bp" or bp is None:
                continue
            lr = np.log(v / bp).dropna()
            mean, std, half, n = aggregate.ci95(lr)
            half = 0.0 if n > 1 and std == 0 else half  # identical peaks every seed: the ratio is exact
            real = ref[ref.dataset == cell[0].removeprefix("synthetic-")] if metric == judged else ref.iloc[0:0]
            rows.append({"quantity": "peak_memory_ratio_vs_bp", **dict(zip(CELL, cell)), "algorithm": alg,
                         "metric": metric, "n": n, "mean": math.exp(mean), "std": std,
                         "ci95_low": math.exp(mean - half), "ci95_high": math.exp(mean + half), "unit": "x",
                         "published": float(real.value.iloc[0]) if len(real) else math.nan,
                         "source": real.source.iloc[0] if len(real) else "",
                         "note": "geometric mean of per-seed a / bp; std on the log scale"
                                 + ("; the measure the claims ledger judges" if metric == judged else "")
                                 + ("; " + aggregate.comparability(cell[0]) if aggregate.comparability(cell[0]) else "")})
    return rows


def table(inputs: list[str], memory: list[str], out: str, figure: str) -> pd.DataFrame:
    runs, diverged = aggregate.read_kept(inputs, "mixer-table")
    acc, _ = _accuracy(runs)
    if not acc:
        raise ConfigError(f"no test accuracy rows in {len(inputs)} run CSV(s): nothing to tabulate")
    mem = aggregate.read(memory)
    t = pd.DataFrame([*acc, *_memory(mem)]).reindex(columns=TABLE)
    t = aggregate.note_diverged(t, diverged, [*CELL, "algorithm"], add_missing=False)
    t[["pred_mode", "source", "note"]] = t[["pred_mode", "source", "note"]].fillna("")
    files.write_csv(t, out)
    from mfbench.plots.mixer import figure as draw

    draw(t, figure)
    return t


def add_command(sub) -> None:
    t = sub.add_parser("mixer-table", help="MF vs BP on an MLP-Mixer (v2's PathMNIST claim): accuracy, peak memory")
    t.add_argument("inputs", nargs="+", help="run CSVs written by `mfbench train` (arch mixer)")
    t.add_argument("--memory", nargs="+", required=True, help="CSVs written by `mfbench memory-depth --seeds`")
    t.add_argument("--out", required=True, help="table CSV")
    t.add_argument("--figure", required=True, help="figure path (.png; a .pdf is written beside it)")
    t.set_defaults(func=lambda a: table(a.inputs, a.memory, a.out, a.figure))
