"""Fig. 4 and Fig. 5 from their summary CSVs (`mfbench fig4-summary` / `fig5-summary`)."""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mfbench.plots import PALETTE, label, save

# Panels in the paper's order; synthetic-* sit where their real counterpart would.
_DATASET_ORDER = ["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"]


def _read(path: str | list[str]) -> pd.DataFrame:
    from mfbench import results_io  # each summary checked (damaged, truncated, empty: one line naming it)

    paths = [path] if isinstance(path, str) else path
    df = pd.concat([results_io.read_table(p, what="summary CSV") for p in paths], ignore_index=True)
    for c in ("pred_mode", "schedule", "dataset"):
        if c in df:
            df[c] = df[c].fillna("").astype(str)
    if df.empty:
        raise results_io.ResultFileError(f"{', '.join(paths)}: no rows to plot")
    return df


def _experiments(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df.experiment)) if "experiment" in df else []


def _figure_name(df: pd.DataFrame, name: str = "Fig. 5", experiment: str = "fig5") -> str:
    """'Fig. 5', or 'Fig. 5 (fig5_he)' for a control's runs, so a figure says which runs it shows."""
    exps = [e for e in _experiments(df) if e != experiment]
    return f"{name} ({', '.join(exps)})" if exps else name


def _datasets(df: pd.DataFrame) -> list[str]:
    def key(d):
        base = d.removeprefix("synthetic-")
        return (_DATASET_ORDER.index(base) if base in _DATASET_ORDER else len(_DATASET_ORDER), d)

    return sorted(df.dataset.unique(), key=key)


def _with_series(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Add a `series` column (bp, mf/ff, mf/bp ...; schedule appended only where one rule ran several,
    experiment only where the rows come from several, e.g. fig5 beside its control fig5_he)."""
    multi = df.groupby("algorithm").schedule.nunique()
    exps = _experiments(df)
    df = df.assign(series=[label(a, m) + (f" ({s})" if multi[a] > 1 else "") + (f" [{e}]" if len(exps) > 1 else "")
                           for a, m, s, e in zip(df.algorithm, df.pred_mode, df.schedule,
                                                 df.get("experiment", pd.Series("", index=df.index)))])
    order = sorted(df.series.unique(), key=lambda s: (not s.startswith("bp"), s))
    return df, order


def _colours(series: list[str]) -> dict[str, str]:
    spare = iter(sns.color_palette("tab10").as_hex()[4:])
    return {s: PALETTE.get(s.split(" ")[0]) or next(spare) for s in series}


def _seeds(df: pd.DataFrame, col: str = "n") -> str:
    lo, hi = int(df[col].min()), int(df[col].max())
    return f"{lo} seeds" if lo == hi else f"{lo}-{hi} seeds"


def _setup(df: pd.DataFrame, arch: str) -> str:
    bs = ", ".join(map(str, sorted(df.batch_size.unique())))
    lr = ", ".join(f"{v:g}" for v in sorted(df.lr.unique()))
    return f"{arch} MLP, batch {bs}, lr {lr}"


def _title(fig, text: str, ncols: int, y: float) -> None:
    """Suptitle wrapped to the figure's width, so a one-panel figure keeps its title on the page."""
    fig.suptitle(textwrap.fill(text, max(60, 55 * ncols)), y=y)


def _grid(n: int, ncols: int, w: float, h: float, **kw):
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _curve(ax, c: pd.DataFrame, colour, name, alpha: float = 0.2) -> None:
    c = c.sort_values("epoch")
    ax.plot(c.epoch, c["mean"] * 100, marker="o", ms=2.5, lw=1.3, color=colour, label=name)
    # n < 2 has no CI (NaN): the band is simply absent there. Display clipped to the possible range.
    ax.fill_between(c.epoch, np.clip(c.ci95_low * 100, 0, 100), np.clip(c.ci95_high * 100, 0, 100),
                    color=colour, alpha=alpha, lw=0)


def fig4(summary_csv: str, out: str) -> None:
    """One panel per dataset: accuracy per epoch, mean and 95% CI band over seeds, each rule/mode."""
    df, series = _with_series(_read(summary_csv))
    colours = _colours(series)
    datasets = _datasets(df)
    fig, axes = _grid(len(datasets), 4, 4.2, 3.4)
    for ax, d in zip(axes.flat, datasets):
        sub = df[df.dataset == d]
        for s in series:
            if (sub.series == s).any():
                _curve(ax, sub[sub.series == s], colours[s], s)
        ax.set_title(f"{d} ({', '.join(sorted(sub.arch_detail.unique()))})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{df.split.iloc[0]} accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    archs = ", ".join(sorted(df.arch_detail.unique()))
    _title(fig, f"Fig. 4: convergence, {_setup(df, archs)}; mean and 95% CI over {_seeds(df)}",
           min(len(datasets), 4), 1.02)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.06), frameon=False)
    fig.tight_layout()
    save(fig, out)


def fig5_curves(summary_csv: str, out: str) -> None:
    """Rows: datasets; columns: rule/mode; one colour per depth (light = shallow, dark = deep)."""
    df, series = _with_series(_read(summary_csv))
    datasets = _datasets(df)
    depths = sorted(df.depth.unique())
    cmap = plt.get_cmap("viridis_r")
    colour = {d: cmap(0.1 + 0.85 * i / max(len(depths) - 1, 1)) for i, d in enumerate(depths)}
    fig, axes = plt.subplots(len(datasets), len(series), figsize=(3.8 * len(series), 3.1 * len(datasets)),
                             squeeze=False, sharey="row", sharex=True)
    for r, d in enumerate(datasets):
        for c, s in enumerate(series):
            ax = axes[r][c]
            sub = df[(df.dataset == d) & (df.series == s)]
            for dep in depths:
                if (sub.depth == dep).any():
                    # fainter bands: up to one per depth overlap in a panel
                    _curve(ax, sub[sub.depth == dep], colour[dep], f"depth {dep}", alpha=0.12)
            ax.set_title(f"{d}: {s}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if c == 0:
                ax.set_ylabel(f"{df.split.iloc[0]} accuracy (%)")
            if r == len(datasets) - 1:
                ax.set_xlabel("epoch")
    handles = [Line2D([], [], color=colour[d], marker="o", ms=3, label=f"depth {d}") for d in depths]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="hidden layers")
    width = ", ".join(map(str, sorted(df.width.unique())))
    _title(fig, f"{_figure_name(df)}: convergence vs depth, {_setup(df, f'n x {width}')}; mean and 95% CI "
                f"over {_seeds(df)}",
           len(series), 1.01)
    fig.tight_layout()
    save(fig, out)


def fig5_targets(targets_csv: str | list[str], out: str) -> None:
    """Epochs until the target accuracy per depth: mean and 95% CI over the runs that reached it;
    runs that never did are counted (r/n beside the point, x on the 'not reached' line), never
    plotted as the last epoch. Several CSVs (e.g. fig5 and its He-init control): one line style
    per experiment, solid first."""
    df, series = _with_series(_read(targets_csv))
    styles = dict(zip(_experiments(df), ["-", "--", ":", "-."]))
    colours = _colours(series)
    datasets = _datasets(df)
    fig, axes = _grid(len(datasets), 4, 4.2, 3.6)
    offset = {s: (j - (len(series) - 1) / 2) * 0.15 for j, s in enumerate(series)}
    for ax, d in zip(axes.flat, datasets):
        sub = df[df.dataset == d]
        never = int(sub.epochs_run.max()) + 1
        for s in series:
            c = sub[sub.series == s].sort_values("depth")
            if c.empty:
                continue
            x = c.depth.to_numpy(float) + offset[s]
            mean = c["mean"].to_numpy(float)
            # Bars clipped to the possible range [1, epochs run] (n = 2 CIs are wide), never into "never".
            lo, hi = np.clip(c.ci95_low, 1, never - 1), np.clip(c.ci95_high, 1, never - 1)
            err = np.nan_to_num(np.vstack([mean - lo, hi - mean]))
            ls = styles.get(c.experiment.iloc[0], "-") if "experiment" in c else "-"
            ax.errorbar(x, mean, yerr=err, fmt="o", ls=ls, ms=4, capsize=2, color=colours[s], label=s)
            part = ((c.n_reached > 0) & (c.n_reached < c.n_runs)).to_numpy()
            ax.scatter(x[part], mean[part], s=30, facecolor="white", edgecolor=colours[s], zorder=3)
            for xi, yi, r, n in zip(x[part], mean[part], c.n_reached[part], c.n_runs[part]):
                ax.annotate(f"{r}/{n}", (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=7,
                            color=colours[s])
            none = (c.n_reached == 0).to_numpy()
            ax.scatter(x[none], np.full(none.sum(), never), marker="x", s=30, color=colours[s], zorder=3)
        ax.axhline(never - 0.5, color="grey", ls=":", lw=0.8)
        ax.set_ylim(0, never + 0.7)
        ticks = [t for t in MaxNLocator(integer=True, nbins=6).tick_values(0, never - 1) if 0 <= t < never - 0.5]
        ax.set_yticks([*ticks, never], [*(f"{t:g}" for t in ticks), "never"])
        ax.set_xticks(sorted(sub.depth.unique()))
        t = sub.target.iloc[0]
        ax.set_title(f"{d}: target {t * 100:g}% {sub.split.iloc[0]} accuracy")
        ax.set_xlabel("hidden layers (depth)")
        ax.set_ylabel("epochs to reach target")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles += [Line2D([], [], ls="", marker="o", mfc="white", mec="grey"),
                Line2D([], [], ls="", marker="x", color="grey")]
    labels += ["some runs never reached it (r/n reached)", "no run reached it within its epochs"]
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5 if len(datasets) > 1 else 3),
               bbox_to_anchor=(0.5, 0.0), frameon=False)  # hangs below the axes, however many rows it has
    width = ", ".join(map(str, sorted(df.width.unique())))
    _title(fig, f"{_figure_name(df)}: epochs to target accuracy vs depth, {_setup(df, f'n x {width}')}; "
           f"mean and 95% CI over the runs that reached it ({_seeds(df, 'n_runs')} per point)", min(len(datasets), 4), 1.02)
    fig.tight_layout()
    save(fig, out)
