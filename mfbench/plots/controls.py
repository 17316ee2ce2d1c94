"""Controls beside the runs they control, from `mfbench controls-summary`'s CSV."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mfbench.plots import label, n_label, save, yerr


def controls_figure(table: pd.DataFrame, path: str, *, title: str) -> None:
    """One panel per dataset; per experiment label a group of points (rule/mode, and schedule where
    several ran): final test accuracy, mean and 95% CI over seeds (clipped to 0-100 %); the mean
    epochs trained beside each point. Points, not bars: the axis zooms in on the values."""
    t = table.copy()
    t["pred_mode"] = t.pred_mode.fillna("")
    several = t.schedule.nunique() > 1
    t["series"] = [label(a, m) + (f" {s}" if several else "") for a, m, s in zip(t.algorithm, t.pred_mode, t.schedule)]
    series = sorted(t.series.unique())
    colours = dict(zip(series, sns.color_palette("tab10", len(series)).as_hex()))
    datasets = list(dict.fromkeys(t.dataset))
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(4.5, 1.6 * t.experiment.nunique() + 2) * len(datasets), 4),
                             squeeze=False)
    w = 0.8 / len(series)
    for ax, d in zip(axes[0], datasets):
        sub = t[t.dataset == d]
        exps = list(dict.fromkeys(sub.experiment))
        for j, s in enumerate(series):
            rows = sub[sub.series == s].set_index("experiment").reindex(exps)
            x = np.arange(len(exps)) + (j - (len(series) - 1) / 2) * w
            mean = rows["mean"] * 100
            ax.errorbar(x, mean, yerr=yerr(mean, rows.ci95_low * 100, rows.ci95_high * 100, 0, 100), fmt="o", ms=5,
                        capsize=2, color=colours[s], label=s)
            for xi, m, e in zip(x, mean, rows.epochs):
                if pd.notna(m) and pd.notna(e):
                    ax.annotate(f"{e:.0f} ep", (xi, m), textcoords="offset points", xytext=(4, 0), va="center",
                                fontsize=6)
        lo = np.nanmin(sub.ci95_low.fillna(sub["mean"])) * 100
        ax.set_ylim(max(0, lo - 5), min(100, np.nanmax(sub.ci95_high.fillna(sub["mean"])) * 100 + 4))
        ax.set_xticks(np.arange(len(exps)), exps, rotation=10)
        ax.set_xlim(-0.6, len(exps) - 0.4)
        ax.set_title(f"{d} ({', '.join(sorted(sub.arch_detail.unique()))}); {n_label(sub.n)} per point")
        ax.set_ylabel("test accuracy (%)")
    fig.suptitle(f"{title}; mean and t-based 95% CI over seeds (clipped to 0-100 %), last epoch; "
                 "'ep' = mean epochs trained")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    save(fig, path)
