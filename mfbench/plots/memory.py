"""Fig. 1/2 (memory over training) and Fig. 3a/3b (peak memory vs depth), from the memory CSVs."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from mfbench.plots import PALETTE, mark_synthetic, n_label, save


def read_results(paths: list[str]) -> pd.DataFrame:
    """The memory experiments' CSVs, concatenated (figures read CSVs, never the experiments)."""
    return pd.concat([pd.read_csv(p, dtype={"pred_mode": str, "phase": str, "event": str, "status": str},
                                  keep_default_na=False, na_values=[""]) for p in paths], ignore_index=True)

# Panel order and titles; a metric absent from the CSVs (e.g. NVML on a CPU run) gets no panel.
TRACE_METRICS = {
    "held_activation_bytes": "held for backward (saved tensors)",
    "allocated_bytes": "allocator: current",
    "peak_allocated_bytes": "allocator: peak within the step",
    "nvml_process_bytes": "NVML process memory (incl. CUDA context)",
    "rss_bytes": "process RSS (CPU)",
}
# Whole-process measures sit on a large constant (runtime, libraries, CUDA context): a zero
# baseline would flatten their variation, so only tensor-level measures start at 0.
PROCESS_METRICS = {"nvml_process_bytes", "rss_bytes", "peak_rss_bytes"}
DEPTH_METRICS = {
    "held_activation_peak_bytes": "peak held for backward (saved tensors)",
    "peak_allocated_bytes": "allocator peak",
    "nvml_process_bytes": "NVML process memory (incl. CUDA context)",
    "peak_rss_bytes": "peak process RSS (CPU)",
}


def _setup(df: pd.DataFrame) -> str:
    r = df.iloc[0]
    return f"{r.dataset}, batch {int(r.batch_size)}, device {r.device}"


def trace_figure(paths: list[str], out: str, *, megabyte: float = 1e6) -> None:
    """One panel per memory metric, every rule's trace on the same axes.

    x is the training step, each step's samples spread evenly inside it, so rules with
    different numbers of hook events per step line up step by step.
    """
    df = read_results(paths)
    df = df[df.status == "ok"].copy()
    events = df.drop_duplicates(["algorithm", "sample"])[["algorithm", "step", "sample"]].copy()
    events["pos"] = events.groupby(["algorithm", "step"])["sample"].rank(method="first") - 1
    events["pos"] = events.step - 1 + events.pos / events.groupby(["algorithm", "step"])["sample"].transform("count")
    df = df.merge(events[["algorithm", "sample", "pos"]], on=["algorithm", "sample"])
    metrics = [m for m in TRACE_METRICS if m in set(df.metric)]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 2.4 * len(metrics)), sharex=True, squeeze=False)
    steps = int(df.step.max())
    for ax, metric in zip(axes[:, 0], metrics):
        for alg, g in df[df.metric == metric].groupby("algorithm", sort=True):
            g = g.sort_values("pos")
            ax.plot(g.pos, g.value / megabyte, drawstyle="steps-post", lw=1.3, color=PALETTE.get(alg),
                    label=f"{alg} (peak {g.value.max() / megabyte:,.1f} MB)")
        for s in range(1, steps):
            ax.axvline(s, color="0.7", lw=0.6, ls=":")
        ax.set_ylabel("MB")
        if metric not in PROCESS_METRICS:
            ax.set_ylim(bottom=0)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.35 * (hi - lo))  # headroom: the legend sits above the traces
        ax.set_title(TRACE_METRICS[metric], fontsize=9)
        ax.legend(fontsize=8, loc="upper right", ncols=2)
    axes[-1, 0].set_xlabel("training step (samples at each layer's forward, backward and optimizer step)")
    axes[-1, 0].set_xlim(0, steps)
    r = df.iloc[0]
    fig.suptitle(f"Fig. 1/2: memory during training, BP vs MF — {r.arch_detail} {r.arch.upper()}, {_setup(df)}"
                 f"\n(MB = {megabyte:,.0f} bytes; n = 1 run per rule)", fontsize=10)
    fig.tight_layout()
    save(fig, out)


def _depth_title(df: pd.DataFrame) -> str:
    exp = str(df.experiment.iloc[0])
    fig = f"Fig. {exp[3:]}" if exp.startswith("fig") else exp
    deepest = df.loc[df.depth.idxmax()]
    if deepest.arch == "cnn":
        model = f"CNN of 1..{int(deepest.depth)} conv layers ({deepest.arch_detail.removeprefix('c')} channels)"
    else:
        model = f"MLP of {int(deepest.width)}-unit ReLU layers"
    return f"{fig}: peak training memory vs depth, {model}"


def _ratio_text(sl: pd.DataFrame, metric: str) -> str:
    """The BP/MF slope ratio with its 95% CI, only when both slopes' intervals lie above 0 (else
    its sign and size are noise); process RSS says why its slope does not compare with the paper's."""
    ratio = sl[sl.unit == "ratio"]
    if not len(ratio):
        return ""
    r = ratio.iloc[0]
    fits = sl[sl.unit != "ratio"].set_index("algorithm")
    flat = [a for a, f in fits.iterrows() if f.slope == 0 and f.stderr == 0]  # exact: held bytes of MF
    unclear = [a for a, f in fits.iterrows() if a not in flat and not f.ci95_low > 0]
    if flat:
        txt = f"BP/MF slope ratio: {', '.join(flat)} flat (exactly 0 MB/layer)"
    elif unclear:
        txt = f"no BP/MF ratio: the 95% CI of {', '.join(unclear)}'s\nslope is not above 0 (or there is none)"
    else:
        ci = f" (95% CI {r.ci95_low:,.1f}-{r.ci95_high:,.1f})" if math.isfinite(r.ci95_low) else ""
        txt = f"BP/MF slope ratio: {r.slope:,.1f}{ci}"
    if not math.isnan(r.published):
        txt += f"\npaper: {r.published:,.1f}" + ("" if r.compared else " (its GPU measure)")
    if metric == "peak_rss_bytes":
        txt += "\nRSS keeps memory the allocator freed, so its\nslope is a loose bound, not the paper's measure"
    return txt


def depth_figure(paths: list[str], slopes_path: str, out: str) -> None:
    """Peak memory vs depth, one panel per metric: measured points, fitted line, slope in the legend.

    Depths that ran out of memory are marked along the bottom. The paper's slopes (where
    published) are quoted in the panel of the compared metric's rows.
    """
    df = read_results(paths)
    sl = pd.read_csv(slopes_path, keep_default_na=False, na_values=[""])
    # the slopes table covers every memory sweep: keep this figure's
    keys = ["experiment", "dataset", "arch", "device"]
    sl = sl.merge(df[keys].drop_duplicates(), on=keys)
    megabyte = float(sl.bytes_per_mb.iloc[0]) if len(sl) else 1e6
    metrics = [m for m in DEPTH_METRICS if m in set(df.metric)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    depths = sorted(df.depth.unique())
    for ax, metric in zip(axes[0], metrics):
        for alg, g in df[df.metric == metric].groupby("algorithm", sort=True):
            color = PALETTE.get(alg)
            ok = g[(g.status == "ok") & g.value.notna()].sort_values("depth")
            s = sl[(sl.metric == metric) & (sl.algorithm == alg)]
            lab = alg
            if len(s) and not math.isnan(s.slope.iloc[0]):
                s = s.iloc[0]
                lab = f"{alg}: {s.slope:,.2f} ± {s.stderr:,.2f} MB/layer"
                if s.compared and not math.isnan(s.published):
                    lab += f" (paper {s.published:,.2f})"
                ax.plot(depths, [s.intercept + s.slope * d for d in depths], ls="--", lw=1, color=color)
            ax.plot(ok.depth, ok.value / megabyte, "o", ms=4, color=color, label=lab)
            oom = g[g.status == "oom"]
            if len(oom):
                ax.plot(oom.depth, [0] * len(oom), "x", ms=7, mew=2, color=color, clip_on=False,
                        label=f"{alg}: out of memory")
        txt = _ratio_text(sl[sl.metric == metric], metric)
        fits = sl[(sl.metric == metric) & (sl.unit != "ratio")]
        ax.set_title(f"{DEPTH_METRICS[metric]}; {n_label(fits.n, 'depth')} per fit", fontsize=9)
        ax.set_xlabel("number of layers")
        ax.set_ylabel("MB")
        ax.set_xticks(depths)
        if metric not in PROCESS_METRICS:
            ax.set_ylim(bottom=0)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.35 * (hi - lo))  # headroom: the legend sits above the points
        leg = ax.legend(fontsize=7, title=txt, title_fontsize=7, loc="upper left", alignment="left")
        leg.get_frame().set_alpha(0.9)
        if (fits.compared & fits.published.notna()).any():
            mark_synthetic(ax, fits.dataset)
            leg.set_bbox_to_anchor((0, 0.93), transform=ax.transAxes)  # below the mark
    fig.suptitle(f"{_depth_title(df)}\n{_setup(df)} (MB = {megabyte:,.0f} bytes)", fontsize=10)
    fig.tight_layout()
    save(fig, out)
