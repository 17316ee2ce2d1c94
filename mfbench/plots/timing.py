"""Tables 4 and 5 as figures, each drawn from its table CSV alone."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfbench.plots import PALETTE, label, legend, mark_synthetic, n_label, save, yerr

_ORDER = {"bp": 0, "mf": 1, "mf/bp": 1, "mf/ff": 2}  # BP first, then MF, then any other rule


def _read(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"pred_mode": str})
    if "pred_mode" in df:
        df["pred_mode"] = df["pred_mode"].fillna("")
    return df


def _series_order(names) -> list[str]:
    return sorted(dict.fromkeys(names), key=lambda s: (_ORDER.get(s, 9), s))


def latency_figure(table_csv: str, path: str) -> None:
    """Median prediction latency per batch size (points on a log ms axis, whisker up to p90),
    the paper's single-input values as black diamonds beside."""
    t = _read(table_csv)
    t["series"] = [label(a, m) for a, m in zip(t.algorithm, t.pred_mode)]
    models = list(dict.fromkeys(zip(t.dataset, t.arch_detail)))
    series = _series_order(t.series)
    fig, axes = plt.subplots(1, len(models), figsize=(max(4.2 * len(models), 6.5), 3.8), squeeze=False, sharey=True)
    w = 0.6 / len(series)
    for ax, (ds, detail) in zip(axes[0], models):
        sub = t[(t.dataset == ds) & (t.arch_detail == detail)]
        sizes = sorted(sub.batch_size.unique())
        for j, s in enumerate(series):
            r = sub[sub.series == s].set_index("batch_size").reindex(sizes)
            x = np.arange(len(sizes)) + (j - (len(series) - 1) / 2) * w
            ax.errorbar(x, r.median_ms, yerr=yerr(r.median_ms, r.median_ms, r.p90_ms.fillna(r.median_ms)), fmt="o",
                        ms=5, capsize=2, label=s, color=PALETTE.get(s))
            ax.scatter(x + 0.3 * w, r.published_ms, marker="D", color="black", s=16, zorder=3,
                       label="paper (single input, real data, hardware not recovered)")
            for xi, top, ratio in zip(x, r.p90_ms.fillna(r.median_ms), r.ratio_to_bp):
                if s != "bp" and np.isfinite(ratio):
                    ax.annotate(f"{ratio:.1f}x", (xi, top), xytext=(0, 3), textcoords="offset points",
                                ha="center", va="bottom", fontsize=6)
        ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.set_xticks(np.arange(len(sizes)), [str(b) for b in sizes])
        ax.set_xlim(-0.5, len(sizes) - 0.5)
        ax.set_xlabel("prediction batch size (examples)")
        ax.set_title(f"{ds}, {sub.arch.iloc[0].upper()} {detail}; {n_label(sub.n, 'call')} per point", fontsize=9)
        if sub.published_ms.notna().any():
            mark_synthetic(ax, [ds])
    axes[0][0].set_ylabel("latency per call (ms, log scale)")
    fig.suptitle(f"Table 4: prediction latency, median (point) to p90 (whisker) over timed calls after warm-up\n"
                 f"untrained Table 3 models on {', '.join(t.device.unique())}; labels: median / BP median",
                 fontsize=9, y=1.04)
    legend(fig, axes[0])
    save(fig, path)


def epoch_time_figure(table_csv: str, path: str) -> None:
    """Mean training epoch time per rule (bars, 95% CI over seeds), the MF/BP ratio above."""
    t = _read(table_csv)
    t["series"] = [a if s == "simultaneous" else f"{a} ({s})" for a, s in zip(t.algorithm, t.schedule)]
    archs = list(dict.fromkeys(t.arch))
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs) + 0.5, 3.8), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        sub = t[t.arch == arch]
        series = _series_order(sub.series)  # per panel: a rule run on one model family leaves no gap in the other
        w = 0.8 / len(series)
        models = list(dict.fromkeys(zip(sub.dataset, sub.arch_detail)))
        for j, s in enumerate(series):
            r = sub[sub.series == s].set_index(["dataset", "arch_detail"]).reindex(models)
            x = np.arange(len(models)) + (j - (len(series) - 1) / 2) * w
            # a t-CI over few seeds can reach below 0 s; the whisker stops at 0 (the CSV keeps the bound)
            ax.bar(x, r.mean_s, w, yerr=yerr(r.mean_s, r.ci95_low_s, r.ci95_high_s, 0), capsize=2, label=s,
                   color=PALETTE.get(s.split()[0]), alpha=0.85)
            if s != "bp":
                for xi, y, ratio in zip(x, r.ci95_high_s.fillna(r.mean_s), r.ratio_to_bp):
                    if np.isfinite(ratio):
                        ax.annotate(f"{ratio:.2f}x", (xi, y), xytext=(0, 2), textcoords="offset points",
                                    ha="center", va="bottom", fontsize=7)
        ax.set_xticks(np.arange(len(models)), [f"{d}\n{a}" for d, a in models], fontsize=8)
        ax.set_ylabel("training time per epoch (s)")
        ax.set_title(f"{arch.upper()}; {n_label(sub.n)} per bar")
        ax.set_ylim(bottom=0)
        ax.margins(y=0.15)
    fig.suptitle("Table 5: training time per epoch, mean and 95% CI over seeds of each run's median epoch; "
                 "labels: mean per-seed ratio to BP.\nPaper: MF shorter than BP (no numbers recovered)",
                 fontsize=9, y=1.06)
    legend(fig, axes[0])
    save(fig, path)
