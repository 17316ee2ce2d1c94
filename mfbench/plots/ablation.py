"""The ablation ladder under both cost protocols, from `mfbench ablation-summary`'s CSV."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mfbench.plots import label, legend, mark_synthetic, n_label, save, yerr


def ablation_figure(table: pd.DataFrame, path: str) -> None:
    """Top row: test accuracy per dataset, one panel per protocol, the rungs left to right in ladder
    order (mean, 95% CI over seeds, clipped to 0-100 %). Bottom row: end-to-end training time per run
    (epochs x seconds per epoch; log axis, points), so a gain bought with time shows beside it."""
    t = table.copy()
    t["pred_mode"] = t.pred_mode.fillna("")
    t["series"] = [label(a, m) for a, m in zip(t.algorithm, t.pred_mode)]
    series = list(dict.fromkeys(t.sort_values(["rung", "pred_mode"]).series))
    colours = dict(zip(series, sns.color_palette("colorblind", len(series)).as_hex()))
    protocols = list(dict.fromkeys(t.protocol))
    datasets = list(dict.fromkeys(t.dataset))
    fig, axes = plt.subplots(2, len(protocols), figsize=(max(5.0, 1.8 * len(datasets) + 2) * len(protocols), 7),
                             squeeze=False, sharex=True)
    w = 0.8 / len(series)
    x0 = np.arange(len(datasets))
    for col, p in enumerate(protocols):
        sub = t[t.protocol == p]
        acc_ax, time_ax = axes[0][col], axes[1][col]
        for j, s in enumerate(series):
            rows = sub[sub.series == s].set_index("dataset").reindex(datasets)
            x = x0 + (j - (len(series) - 1) / 2) * w
            mean = rows["mean"] * 100
            acc_ax.errorbar(x, mean, yerr=yerr(mean, rows.ci95_low * 100, rows.ci95_high * 100, 0, 100), fmt="o",
                            ms=5, capsize=2, color=colours[s], label=s)
            time_ax.plot(x, rows.end_to_end_s, "o", ms=5, color=colours[s], label=s)
            for xi, m, e in zip(x, mean, rows.epochs):
                if pd.notna(m) and pd.notna(e):
                    acc_ax.annotate(f"{e:.0f}", (xi, m), textcoords="offset points", xytext=(0, 6), ha="center",
                                    fontsize=6)
        acc_ax.set_title(f"{p} ({n_label(sub.n)})")
        acc_ax.set_ylabel("test accuracy (%); label: epochs")
        lo = np.nanmin(sub.ci95_low.fillna(sub["mean"])) * 100
        acc_ax.set_ylim(max(0, lo - 5), min(100, np.nanmax(sub.ci95_high.fillna(sub["mean"])) * 100 + 5))
        mark_synthetic(acc_ax, datasets)
        if sub.end_to_end_s.gt(0).any():
            time_ax.set_yscale("log")
        time_ax.set_ylabel("end-to-end training time per run (s)")
        time_ax.set_xticks(x0, datasets)
    legend(fig, axes.ravel(), y=-0.04)
    fig.suptitle("Ablation ladder BP -> BP-DS -> MF-joint -> MF (Table 3 MLPs)")
    fig.tight_layout()
    save(fig, path)
