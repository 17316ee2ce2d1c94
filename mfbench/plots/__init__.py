"""Figures, each a pure function of result CSVs (never of a live run).

One module per artefact group; `save` writes the PNG and a PDF beside it, atomically.
"""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # headless: workflow jobs and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from mfbench import files  # noqa: E402

sns.set_theme(context="paper", style="whitegrid")

# One colour per rule/mode everywhere, so figures read alike.
PALETTE = {"bp": "#4c72b0", "mf": "#dd8452", "mf/ff": "#dd8452", "mf/bp": "#c44e52", "ff": "#55a868",
           "ff/goodness": "#55a868", "ff/softmax": "#8172b3"}


def label(algorithm: str, pred_mode: str = "") -> str:
    """'mf/ff' for a rule with several prediction modes, else the rule's name."""
    return f"{algorithm}/{pred_mode}" if pred_mode and pred_mode != algorithm and algorithm != "bp" else algorithm


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
