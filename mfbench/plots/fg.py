"""Figures of the forward-gradient study (Ren et al.): Table 3 and the gradient cosine."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
import pandas as pd

from matplotlib.lines import Line2D

from mfbench.plots import mark_synthetic, n_label, save, yerr

# One colour per family: backprop blues, feedback alignment greens, forward gradient oranges/reds.
COLORS = {"bp": "#4c72b0", "l-bp": "#6a8fcf", "lg-bp": "#8fb0e3", "fa": "#2e8b57", "l-fa": "#55a868",
          "lg-fa": "#8fd19e", "dfa": "#17becf", "fg-w": "#c44e52", "fg-a": "#dd8452", "lg-fg-w": "#e17c7f",
          "lg-fg-a": "#f2b134", "heads-only": "#999999"}


def _cells(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(df.dataset, df.arch_detail)))


def table_figure(table: pd.DataFrame, path: str, *, selection: str = "last") -> None:
    """Per cell: test (dot) and train (hollow square) error per method, mean and 95% CI over seeds
    (clipped to 0-100 %); published values as black markers beside (diamond: test, circle: train)."""
    cells = _cells(table)
    fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 4.2), squeeze=False)
    for ax, (ds, detail) in zip(axes[0], cells):
        sub = table[(table.dataset == ds) & (table.arch_detail == detail)]
        x = np.arange(len(sub))
        colours = [COLORS.get(m, "grey") for m in sub.pred_mode]
        for k, split in enumerate(("test", "train")):
            mean = sub[f"{split}_mean"].to_numpy(float)
            err = yerr(mean, sub[f"{split}_ci95_low"], sub[f"{split}_ci95_high"], 0, 100)
            off = (k - 0.5) * 0.3
            for xi, m, e, c in zip(x + off, mean, err.T, colours):
                ax.errorbar(xi, m, yerr=e[:, None], fmt="o" if split == "test" else "s", ms=5, capsize=2, color=c,
                            mfc=c if split == "test" else "white")
            ax.scatter(x + off + 0.12, sub[f"published_{split}"], marker="D" if split == "test" else "o",
                       color="black", s=16, zorder=3, label=f"published {split} (real data)")
        ax.set_xticks(x, [m.upper() for m in sub.pred_mode], rotation=45, ha="right")
        ax.set_ylabel("error (%)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{ds}, LocalMixer {detail}; {n_label(sub.test_n)} per point")
        if sub[["published_test", "published_train"]].notna().any().any():
            mark_synthetic(ax, [ds])
    handles = [Line2D([], [], ls="", marker="o", color="grey", label="measured test"),
               Line2D([], [], ls="", marker="s", color="grey", mfc="white", label="measured train"),
               *axes[0][0].get_legend_handles_labels()[0]]
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.suptitle(textwrap.fill(f"Ren et al. Table 3: test / train error, mean and t-based 95% CI over seeds (clipped "
                               f"to 0-100 %), epoch = {selection}; black: published", 50 + 45 * len(cells)))
    fig.tight_layout()
    save(fig, path)


def cosine_figure(curves: pd.DataFrame, path: str) -> None:
    """Per cell: cosine(forward-gradient estimate, true local gradient) per epoch, per method."""
    cells = _cells(curves)
    fig, axes = plt.subplots(1, len(cells), figsize=(5 * len(cells), 3.8), squeeze=False, sharey=True)
    for ax, (ds, detail) in zip(axes[0], cells):
        sub = curves[(curves.dataset == ds) & (curves.arch_detail == detail)]
        for m, g in sub.groupby("pred_mode", sort=False):
            ax.plot(g.epoch, g["mean"], marker="o", ms=3, color=COLORS.get(m), label=m.upper())
            ax.fill_between(g.epoch, g.ci95_low.fillna(g["mean"]).clip(-1, 1), g.ci95_high.fillna(g["mean"]).clip(-1, 1),
                            alpha=0.2, color=COLORS.get(m))
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{ds}, LocalMixer {detail}; {n_label(sub.n)} per point")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("cosine(estimate, true local gradient)")
    fig.suptitle(textwrap.fill("Forward-gradient estimate vs backprop's local gradient on the same batch (mean of the "
                               "steps sampled per epoch; band: 95% CI over seeds, clipped to [-1, 1])",
                               60 + 45 * len(cells)), fontsize=10)
    fig.tight_layout()
    save(fig, path)
