"""Scalable FF vs BP: accuracy over seeds, and the time / memory cost, from the sff table and bench CSVs."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfbench.plots import PALETTE, label, legend, mark_synthetic, n_label, save, yerr

COLORS = {**PALETTE, "sff": "#937860", "sff/avg": "#937860", "sff/last": "#da8bc3", "sff-layer/avg": "#8c8c8c",
          "sff-layer/last": "#ccb974"}


def _series(algorithm: str, granularity, pred_mode: str) -> str:
    name = "sff-layer" if algorithm == "sff" and granularity == "layer" else algorithm
    return label(name, pred_mode)


def _column(experiment: str, train_subset) -> str:
    return f"{experiment}\n{'all train' if not train_subset else f'{int(train_subset)} train'}"


def accuracy_figure(table: pd.DataFrame, path: str) -> None:
    """One panel per (dataset, net): bars per rule / prediction mode within each column (experiment)."""
    t = table[table.quantity == "test_accuracy"].copy()
    t["series"] = [_series(a, g, m) for a, g, m in zip(t.algorithm, t.granularity, t.pred_mode)]
    t["column"] = [_column(e, s) for e, s in zip(t.experiment, t.train_subset)]
    panels = list(dict.fromkeys(zip(t.dataset, t.arch_detail)))
    series = sorted(t.series.unique(), key=lambda s: (s != "bp", s))
    ncol = min(len(panels), 2)
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 3.6 * nrow), squeeze=False)
    for ax, (ds, det) in zip(axes.flat, panels):
        sub = t[(t.dataset == ds) & (t.arch_detail == det)]
        cols = list(dict.fromkeys(sub.column))
        w = 0.8 / len(series)
        for j, s in enumerate(series):
            rows = sub[sub.series == s].set_index("column").reindex(cols)
            x = np.arange(len(cols)) + (j - (len(series) - 1) / 2) * w
            err = yerr(rows["mean"] * 100, rows.ci95_low * 100, rows.ci95_high * 100, 0, 100)
            ax.bar(x, rows["mean"] * 100, w, yerr=err, capsize=2, label=s, color=COLORS.get(s), alpha=0.9)
        ax.set_xticks(np.arange(len(cols)), cols, fontsize=8)
        ax.set_title(f"{ds}, {det}; {n_label(sub.n)} per bar", fontsize=9)
        mark_synthetic(ax, [ds])
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Scalable FF vs BP: final test accuracy, mean and 95% CI over seeds (clipped to 0-100 %)")
    legend(fig, axes.flat, -0.06)
    save(fig, path)


def cost_figure(table: pd.DataFrame, bench: pd.DataFrame, path: str) -> None:
    """Left: SFF/BP epoch-time and held-bytes ratios (mean, 95% CI over seeds). Right: bytes held for
    backward vs blocks trained, one panel per net."""
    ratios = table[table.quantity.astype(str).str.endswith("_ratio_sff_over_bp")]
    held = bench[bench.metric == "saved_tensor_peak_bytes"]
    nets = list(dict.fromkeys(zip(held.dataset, held.arch_detail)))
    fig, axes = plt.subplots(1, 1 + len(nets), figsize=(4.5 * (1 + len(nets)), 3.6), squeeze=False)
    ax = axes[0][0]
    cells = list(dict.fromkeys(zip(ratios.dataset, ratios.arch_detail)))
    for j, (q, name, marker) in enumerate((("epoch_time_ratio_sff_over_bp", "epoch time", "o"),
                                           ("saved_tensor_peak_bytes_ratio_sff_over_bp", "held bytes", "s"))):
        r = ratios[ratios.quantity == q].set_index(["dataset", "arch_detail"]).reindex(cells)
        y = np.arange(len(cells)) + (j - 0.5) * 0.25
        err = yerr(r["mean"], r.ci95_low, r.ci95_high, lo=1e-3)  # a ratio is positive (log axis)
        ax.errorbar(r["mean"], y, xerr=err, fmt=marker, capsize=3, label=f"{name} ({n_label(r.n)})")
    for i, (ds, _) in enumerate(cells):  # a published range (the author's 1.5-3x slowdown), where one exists
        band = ratios[(ratios.dataset == ds) & ratios.published_low.notna()] if "published_low" in ratios else []
        if len(band):
            ax.fill_betweenx([i - 0.4, i + 0.4], band.published_low.iloc[0], band.published_high.iloc[0],
                             color="0.85", zorder=0, label="published range (epoch time)")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_ylim(-0.6, len(cells) - 0.4)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(cells)), [f"{d}\n{a}" for d, a in cells], fontsize=8)
    ax.set_xlabel("SFF / BP (log scale; 1 = same)")
    ax.set_title("cost ratios", fontsize=9)
    mark_synthetic(ax, [d for d, _ in cells])
    for ax, (ds, det) in zip(axes[0][1:], nets):
        sub = held[(held.dataset == ds) & (held.arch_detail == det)]
        for a, g in sub.groupby("algorithm"):
            m = g.groupby("depth").value.mean() / 2**20
            ax.plot(m.index, m.values, marker="o", label=a, color=COLORS.get(a))
        ax.set_xlabel("blocks trained")
        ax.set_ylabel("held for backward (MiB)")
        ax.set_title(f"{ds}, {det}, batch {int(sub.batch_size.iloc[0])}", fontsize=9)
    fig.suptitle("Scalable FF vs BP: time per epoch and activation memory held per step (one machine)")
    legend(fig, axes.flat, -0.14)
    save(fig, path)

