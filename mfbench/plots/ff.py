"""Forward-Forward figures: Hinton's MNIST setup and the FF-vs-backprop study."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from mfbench.plots import PALETTE, SYNTHETIC, is_synthetic, label, mark_synthetic, n_label, save, yerr


def hinton_figure(runs: pd.DataFrame, table: pd.DataFrame, path: str) -> None:
    """Test accuracy per epoch (mean and range over seeds) per prediction mode; the
    published value as a dashed line."""
    acc = runs[(runs.split == "test") & (runs.metric == "accuracy")]
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, g in acc.groupby("pred_mode"):
        s = g.groupby("epoch")["value"].agg(["mean", "min", "max"]) * 100
        name = label("ff", mode)
        ax.plot(s.index, s["mean"], marker="o", ms=3, label=f"{name} (measured)", color=PALETTE.get(name))
        ax.fill_between(s.index, s["min"], s["max"], alpha=0.2, color=PALETTE.get(name))
    pubs = table[table.published.notna()].drop_duplicates("published")  # one line per published value
    for _, p in pubs.iterrows():
        ax.axhline(p.published * 100, ls="--", color="black", lw=1,
                   label=f"published {p.published * 100:.2f} % (real MNIST)")
    if len(pubs):
        mark_synthetic(ax, acc.dataset.unique())
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("test accuracy (%)")
    lo = np.nanmin(np.r_[acc.groupby(["pred_mode", "epoch"])["value"].mean().values * 100, [100.0]])
    ax.set_ylim(max(0.0, min(lo, 90.0) - 2), 100)
    n = acc.seed.nunique()
    detail = ", ".join(sorted(acc.arch_detail.unique()))
    ax.set_title(f"Hinton's FF setup: {', '.join(sorted(acc.dataset.unique()))}, MLP {detail} ReLU, "
                 f"{n} seed(s)\nline: mean; band: range over seeds", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, path)


def study_figure(table: pd.DataFrame, speed: pd.DataFrame | None, path: str) -> None:
    """Three panels, FF vs BP per dataset: train/test accuracy (mean, 95% CI over seeds; the
    study's values as black markers beside), the job's end-to-end time and the compute time
    per epoch (mean over seeds, range as the interval; points on a log axis: FF and BP differ
    by orders of magnitude)."""
    datasets = list(dict.fromkeys(table.dataset))
    x = np.arange(len(datasets))
    series = [(a, m) for a, m in table[["algorithm", "pred_mode"]].drop_duplicates().itertuples(index=False)]
    series.sort(key=lambda s: (s[0] != "ff", s[1]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    w = 0.8 / (2 * len(series))
    for j, (a, m) in enumerate(series):
        rows = table[(table.algorithm == a) & (table.pred_mode == m)].set_index("dataset").reindex(datasets)
        name = label(a, m)
        for k, split in enumerate(("train", "test")):
            off = x + (2 * j + k - (2 * len(series) - 1) / 2) * w
            mean = rows[f"{split}_accuracy"] * 100
            ax.errorbar(off, mean, yerr=yerr(mean, rows[f"{split}_ci95_low"] * 100, rows[f"{split}_ci95_high"] * 100,
                                             0, 100),
                        fmt="o" if split == "test" else "s", mfc="white" if split == "train" else None, ms=4,
                        capsize=2, color=PALETTE.get(name, PALETTE.get(a)), label=f"{name} {split}")
            ax.scatter(off + 0.35 * w, rows[f"published_{split}"] * 100, marker="D" if split == "test" else "d",
                       color="black", s=14, zorder=3, label=f"published {split} (real data)" if j == 0 else None)
    ax.set_xticks(x, datasets, rotation=15)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100 + 12 * is_synthetic(datasets))
    ax.set_title(f"train (hollow) / test accuracy, last epoch; {n_label(table.n)}", fontsize=9)
    if table[["published_train", "published_test"]].notna().any().any():
        mark_synthetic(ax, datasets)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)

    algs = list(dict.fromkeys(a for a, _ in series))
    for ax, col, title in ((axes[1], "end_to_end_s", "end-to-end time (job wall time)"),
                           (axes[2], "epoch_time_s", "compute time per epoch (median)")):
        w = 0.5 / len(algs)
        for j, a in enumerate(algs):
            rows = table[table.algorithm == a].drop_duplicates("dataset").set_index("dataset").reindex(datasets)
            lo, hi = (rows.get(f"{col}_{b}", rows[col]) for b in ("min", "max"))
            ax.errorbar(x + (j - (len(algs) - 1) / 2) * w, rows[col], yerr=yerr(rows[col], lo, hi, 0), fmt="o",
                        ms=5, capsize=3, color=PALETTE.get(a), label=a)
        ax.set_yscale("log")
        ax.set_xticks(x, datasets, rotation=15)
        ax.set_xlim(-0.5, len(datasets) - 0.5)
        ax.set_ylabel("seconds (log scale)")
        ax.set_title(f"{title}: mean, range over seeds; {n_label(table.n)}", fontsize=9)
        ax.legend(fontsize=8)
    sub = table.drop_duplicates("dataset")
    sp = sub.speedup_bp_over_ff.dropna()
    note = ", ".join(f"{d} {v:.2f}x" for d, v in zip(sub.dataset, sub.speedup_bp_over_ff) if v == v)
    note = f"measured BP/FF end-to-end: {note}" if len(sp) else ""
    if speed is not None and len(speed):
        r = speed[speed.metric == "train_time_ratio_ff_over_bp"].iloc[0]
        note += f"; ff-bench ({r.dataset}, {r.device}): FF/BP training time {r.value:.2f}"
    mark = f" [{SYNTHETIC}]" if is_synthetic(datasets) else ""
    fig.text(0.5, -0.06, f"published (real data): FF trains about 3.7x faster than BP (FF/BP = 0.27). "
             f"{note.lstrip('; ')}{mark}", ha="center", fontsize=8)
    ff = table[table.algorithm == "ff"].iloc[0] if (table.algorithm == "ff").any() else None
    bp = table[table.algorithm == "bp"].iloc[0] if (table.algorithm == "bp").any() else None
    setup = []
    if ff is not None:
        setup.append(f"FF {ff.arch_detail} {ff.schedule}, {int(ff.epochs)} epochs in all, lr {ff.lr:g}")
    if bp is not None:
        setup.append(f"BP {bp.arch_detail} + head, {int(bp.epochs)} epochs, batch {int(bp.batch_size)}, lr {bp.lr:g}")
    fig.suptitle("Forward-Forward vs backprop (Kesanapalli et al. setup): " + "; ".join(setup), fontsize=10)
    fig.tight_layout()
    save(fig, path)
