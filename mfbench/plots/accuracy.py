"""Table 3 as a figure: measured accuracy (mean, 95% CI over seeds) beside published values."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, MaxNLocator
import pandas as pd

from mfbench.plots import PALETTE, is_synthetic, label, mark_synthetic, n_label, save, yerr

_MARKERS = {"mono-forward": ("D", "paper (Gong et al.)"), "spyra-dzwinel": ("x", "re-evaluation (Spyra & Dzwinel)")}


def table3_figure(table: pd.DataFrame, path: str, *, selection: str = "last") -> None:
    """Per model family: one point per (dataset, rule/mode) with its t-based 95% CI (clipped to
    [0, 100] %), published values as black markers just right of it. Points, not bars, so the
    axis may zoom in on the range the values occupy."""
    cells = table.drop_duplicates(["dataset", "arch", "algorithm", "pred_mode"]).copy()
    cells["series"] = [label(a, m) for a, m in zip(cells.algorithm, cells.pred_mode)]
    pubs = table[table.published.notna()].copy()
    pubs["series"] = [label(a, m) for a, m in zip(pubs.algorithm, pubs.pred_mode)]
    archs = sorted(cells.arch.unique())
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], archs):
        sub = cells[cells.arch == arch]
        datasets = list(dict.fromkeys(sub.dataset))
        series = sorted(sub.series.unique(), key=lambda s: (s != "bp", s))  # per panel: no empty slots
        w = 0.8 / len(series)
        for j, s in enumerate(series):
            rows = sub[sub.series == s].set_index("dataset").reindex(datasets)
            x = np.arange(len(datasets)) + (j - (len(series) - 1) / 2) * w
            mean = rows["mean"] * 100
            ax.errorbar(x, mean, yerr=yerr(mean, rows.ci95_low * 100, rows.ci95_high * 100, 0, 100), fmt="o",
                        ms=5, capsize=3, color=PALETTE.get(s), label=s)
            p = pubs[(pubs.arch == arch) & (pubs.series == s)]
            for study, (marker, name) in _MARKERS.items():
                q = p[p.study == study].drop_duplicates("dataset").set_index("dataset").reindex(datasets)
                ax.scatter(x + 0.3 * w, q.published * 100, marker=marker, color="black", s=22, zorder=3,
                           label=name if (ax is axes[0][0] and j == 0) else None)
        ax.set_xticks(np.arange(len(datasets)), datasets, rotation=15)
        ax.set_xlim(-0.6, len(datasets) - 0.4)
        details = ", ".join(sorted(sub.arch_detail.unique()))
        ax.set_title(f"{arch.upper()} ({details}); {n_label(sub.n)} per point")
        ax.set_ylabel("test accuracy (%)")
        if len(pubs[pubs.arch == arch]):
            mark_synthetic(ax, datasets)
    values = np.r_[cells.ci95_low.fillna(cells["mean"]), cells.ci95_high.fillna(cells["mean"]), pubs.published]
    lo, hi = np.nanmin(values) * 100, np.nanmax(values) * 100
    pad = max(1.0, 0.08 * (hi - lo))
    bottom, top = max(0.0, lo - pad), min(100.0 + pad, hi + pad)
    # room above the points for the "synthetic" mark, without ticks far past 100 %
    axes[0][0].set_ylim(bottom, top + (0.12 * (top - bottom) if is_synthetic(cells.dataset) else 0))
    axes[0][0].yaxis.set_major_locator(FixedLocator([t for t in MaxNLocator(6).tick_values(bottom, top) if t <= 100]))
    runs = cells.drop_duplicates(["dataset", "arch", "algorithm"])  # a run diverges in every prediction mode
    left_out = int(runs.n_diverged.sum()) if "n_diverged" in runs else 0
    fig.suptitle(textwrap.fill(f"Table 3: test accuracy, mean and t-based 95% CI over seeds (clipped to 0-100 %), "
                               f"epoch = {selection}; black markers: published values", 60 + 50 * len(archs))
                 + (f"\n{left_out} diverged run(s) left out (table3.csv: diverged_seeds)" if left_out else ""),
                 y=1.02 + 0.04 * (len(archs) == 1))
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.08), frameon=False)
    save(fig, path)
