"""Table 3 as a figure: measured accuracy (mean, 95% CI over seeds) beside published values."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfbench.plots import PALETTE, label, save

_MARKERS = {"mono-forward": ("D", "paper (Gong et al.)"), "spyra-dzwinel": ("x", "re-evaluation (Spyra & Dzwinel)")}


def table3_figure(table: pd.DataFrame, path: str, *, selection: str = "last") -> None:
    cells = table.drop_duplicates(["dataset", "arch", "algorithm", "pred_mode"]).copy()
    cells["series"] = [label(a, m) for a, m in zip(cells.algorithm, cells.pred_mode)]
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
            err = np.vstack([rows["mean"] - rows.ci95_low, rows.ci95_high - rows["mean"]]) * 100
            ax.bar(x, rows["mean"] * 100, w, yerr=np.nan_to_num(err), capsize=2, label=s,
                   color=PALETTE.get(s, None), alpha=0.85)
            pubs = table[(table.arch == arch) & table.published.notna()]
            for study, (marker, name) in _MARKERS.items():
                p = pubs[(pubs.study == study) & ([label(a, m) for a, m in zip(pubs.algorithm, pubs.pred_mode)] == np.array(s))]
                p = p.drop_duplicates("dataset").set_index("dataset").reindex(datasets)
                ax.scatter(x, p.published * 100, marker=marker, color="black", s=22, zorder=3,
                           label=name if (ax is axes[0][0] and j == 0) else None)
        ax.set_xticks(np.arange(len(datasets)), datasets, rotation=15)
        details = ", ".join(sorted(sub.arch_detail.unique()))
        ax.set_title(f"{arch.upper()} ({details})")
        ax.set_ylabel("test accuracy (%)")
    n = int(cells.n.max()) if len(cells) else 0
    runs = cells.drop_duplicates(["dataset", "arch", "algorithm"])  # a run diverges in every prediction mode
    left_out = int(runs.n_diverged.sum()) if "n_diverged" in runs else 0
    fig.suptitle(f"Table 3: test accuracy, mean and 95% CI over {n} seed(s), epoch = {selection}; "
                 "black markers: published values"
                 + (f"\n{left_out} diverged run(s) left out (table3.csv: diverged_seeds)" if left_out else ""))
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.08), frameon=False)
    lo = np.nanmin(np.r_[cells.ci95_low.fillna(cells["mean"]), table.published.dropna()]) * 100
    axes[0][0].set_ylim(max(0, lo - 5), 100)
    save(fig, path)
