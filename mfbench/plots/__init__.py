"""Figures, each a pure function of result CSVs (never of a live run).

One module per artefact group; `save` writes the PNG and a PDF beside it, atomically.
What every figure keeps to: measured values as points (or lines) with their interval, the
interval clipped to the quantity's valid range, no bars on log or truncated axes; each panel
says its n; results on synthetic data say "synthetic: not comparable" wherever a published
value stands beside them; no verdicts (they live in the claims ledger only).
"""
from __future__ import annotations

import os

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: workflow jobs and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from mfbench import files  # noqa: E402

sns.set_theme(context="paper", style="whitegrid")

# One colour per rule/mode everywhere, so figures read alike.
PALETTE = {"bp": "#4c72b0", "mf": "#dd8452", "mf/ff": "#dd8452", "mf/bp": "#c44e52", "ff": "#55a868",
           "ff/goodness": "#55a868", "ff/softmax": "#8172b3", "fa": "#da8bc3", "dfa": "#17becf", "sff": "#937860"}


def label(algorithm: str, pred_mode: str = "") -> str:
    """'mf/ff' for a rule with several prediction modes, else the rule's name."""
    return f"{algorithm}/{pred_mode}" if pred_mode and pred_mode != algorithm and algorithm != "bp" else algorithm


# Wherever a published value stands beside a result on synthetic data (smoke runs).
SYNTHETIC = "synthetic: not comparable"


def is_synthetic(datasets) -> bool:
    return any(str(d).startswith("synthetic-") for d in datasets)


def mark_synthetic(ax, datasets) -> None:
    """Say on the panel that its results are synthetic stand-ins for the published (real-data) values."""
    if is_synthetic(datasets):
        ax.text(0.01, 0.99, SYNTHETIC, transform=ax.transAxes, ha="left", va="top", fontsize=7, color="#b22222",
                fontweight="bold", bbox=dict(facecolor="white", edgecolor="#b22222", alpha=0.9, pad=2))


def n_label(ns, unit: str = "seed") -> str:
    """'n = 3 seeds' or 'n = 2-3 seeds' (the panel's number of runs behind each point)."""
    ns = [int(n) for n in ns if n == n]
    if not ns:
        return f"n = 0 {unit}s"
    lo, hi = min(ns), max(ns)
    return f"n = {lo} {unit}{'s' if lo != 1 else ''}" if lo == hi else f"n = {lo}-{hi} {unit}s"


def yerr(mean, low, high, lo: float = -np.inf, hi: float = np.inf) -> np.ndarray:
    """Errorbar extents of [low, high] around mean, the interval clipped to the quantity's valid
    range [lo, hi] (accuracy: [0, 100] %; time: >= 0); a missing bound (n < 2) draws no bar."""
    mean, low, high = (np.asarray(v, dtype=float) for v in (mean, low, high))
    return np.nan_to_num(np.vstack([mean - np.clip(low, lo, hi), np.clip(high, lo, hi) - mean]))


def save(fig, path: str) -> None:
    """Write `path` (.png) and the same figure as .pdf beside it."""
    root, ext = os.path.splitext(path)
    for p in (path, root + ".pdf") if ext == ".png" else (path,):
        with files.atomic_path(p) as tmp:
            fig.savefig(tmp, format=os.path.splitext(p)[1][1:], bbox_inches="tight", dpi=150)
    plt.close(fig)


def legend(fig, axes, y: float = -0.1) -> None:
    """One legend below the figure with every distinct label of `axes`, in first-seen order."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, y), frameon=False)
