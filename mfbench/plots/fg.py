"""Figures of the forward-gradient study (Ren et al.): Table 3 and the gradient cosine."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfbench.plots import save

# One colour per family: backprop blues, feedback alignment greens, forward gradient oranges/reds.
COLORS = {"bp": "#4c72b0", "l-bp": "#6a8fcf", "lg-bp": "#8fb0e3", "fa": "#2e8b57", "l-fa": "#55a868",
          "lg-fa": "#8fd19e", "dfa": "#17becf", "fg-w": "#c44e52", "fg-a": "#dd8452", "lg-fg-w": "#e17c7f",
          "lg-fg-a": "#f2b134", "heads-only": "#999999"}


def _cells(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(df.dataset, df.arch_detail)))


def table_figure(table: pd.DataFrame, path: str, *, selection: str = "last") -> None:
    """Per cell: test (dark) and train (light) error per method, mean and 95% CI over seeds;
    published values as black markers (diamond: test, circle: train)."""
    cells = _cells(table)
    fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 4.2), squeeze=False)
    for ax, (ds, detail) in zip(axes[0], cells):
        sub = table[(table.dataset == ds) & (table.arch_detail == detail)]
        x = np.arange(len(sub))
        for k, split in enumerate(("test", "train")):
            mean = sub[f"{split}_mean"].to_numpy(float)
            err = np.vstack([mean - sub[f"{split}_ci95_low"], sub[f"{split}_ci95_high"] - mean])
            off = (k - 0.5) * 0.4
            ax.bar(x + off, mean, 0.4, yerr=np.nan_to_num(err), capsize=2, alpha=0.9 if split == "test" else 0.4,
                   color=[COLORS.get(m, "grey") for m in sub.pred_mode], label=f"measured {split}")
            ax.scatter(x + off, sub[f"published_{split}"], marker="D" if split == "test" else "o", color="black",
                       s=18, zorder=3, label=f"published {split}")
        ax.set_xticks(x, [m.upper() for m in sub.pred_mode], rotation=45, ha="right")
        ax.set_ylabel("error (%)")
        n = int(np.nanmax(sub.test_n)) if len(sub) else 0
        ax.set_title(f"{ds}, LocalMixer {detail} ({n} seed(s))")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Ren et al. Table 3: test (dark) / train (light) error, mean and 95% CI over seeds, "
                 f"epoch = {selection}; black: published")
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
            ax.fill_between(g.epoch, g.ci95_low.fillna(g["mean"]), g.ci95_high.fillna(g["mean"]), alpha=0.2,
                            color=COLORS.get(m))
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("epoch")
        ax.set_title(f"{ds}, LocalMixer {detail}")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("cosine(estimate, true local gradient)")
    fig.suptitle("Forward-gradient estimate vs backprop's local gradient on the same batch "
                 "(mean of the steps sampled per epoch; band: 95% CI over seeds)", fontsize=10)
    fig.tight_layout()
    save(fig, path)
