"""Memory artefacts of the Mono-Forward paper (arXiv 2501.09238).

- `mfbench memory-trace`  (Fig. 1/2): memory sampled at every layer's forward and
  backward and every optimizer step, over a few training steps of one rule.
- `mfbench memory-depth`  (Fig. 3a/3b): peak memory of training steps for depth
  1..N, each depth a fresh model; a depth that runs out of GPU memory is a row with
  status `oom` and the sweep goes on.
- `mfbench memory-slopes`: a least-squares slope (MB per layer, with its standard
  error) per rule and metric, the BP/MF ratio, the paper's slopes beside them.

What is measured, by device: bytes autograd holds for backward
(`SavedTensorMeter`; exact and device independent, the primary depth measure on a
CPU) everywhere; allocator current/peak and NVML process memory on CUDA; RSS on CPU.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import math
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pandas as pd

# torch and the torch-side modules are imported inside the measuring functions: the slopes and
# figure commands (aggregation jobs) then start without them.
from mfbench import files, reference
from mfbench.config import ConfigError, RunConfig

if TYPE_CHECKING:
    import torch

    from mfbench import data
    from mfbench.measure import SavedTensorMeter

# Metrics of a depth row, per device type; an `oom` row carries NaN for each.
DEPTH_METRICS = {
    "cpu": ["held_activation_peak_bytes", "peak_rss_bytes"],
    "cuda": ["held_activation_peak_bytes", "peak_allocated_bytes", "nvml_process_bytes"],
}
EXTRA_COLUMNS = ["device", "status", "step", "sample", "event"]


# --- shared helpers ---------------------------------------------------------------------
def endless_batches(splits: data.Splits, batch_size: int, gen: torch.Generator
                    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(epoch, x, y) for as many steps as asked, reshuffling every epoch like `run.train`."""
    from mfbench import data

    x, y = splits.train
    epoch = 0
    while True:
        epoch += 1
        for xb, yb in data.batches(x, y, batch_size, gen):
            yield epoch, xb, yb


def free_memory(device: str) -> None:
    """Return what the last model held: Python garbage, the CUDA cache, glibc's free lists.

    malloc_trim keeps a later depth's peak RSS from starting on pages an earlier one freed
    but glibc kept; best effort (no glibc: nothing to trim).
    """
    import torch

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    else:
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def start_rule(cfg: RunConfig, device: str, splits: data.Splits):
    """A fresh rule in its last training phase (greedy schedules: the full network's phase),
    taking its steps as the paper's algorithm does (`algorithms.for_memory`)."""
    from mfbench import algorithms, run

    rule = run.build(algorithms.for_memory(cfg), device, splits)
    phase = rule.phases()[-1]
    rule.begin_phase(phase)
    rule.train()
    return rule, phase


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- Fig. 1/2: memory over training -------------------------------------------------------
class Tracer:
    """Samples memory whenever a leaf module runs forward or backward and after each optimizer step."""

    def __init__(self, rule, device: str, meter: SavedTensorMeter):
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.meter = meter
        self.samples: list[dict[str, Any]] = []
        self.epoch = self.step = 0
        self._handles = []
        for name, mod in rule.named_modules():
            if not any(True for _ in mod.children()):
                self._handles.append(mod.register_forward_hook(self._forward_hook(f"{name} ({type(mod).__name__})")))
        for opt in rule.optimizers:
            self._handles.append(opt.register_step_post_hook(lambda *_: self.sample("optimizer step")))

    def _forward_hook(self, name: str):
        def hook(mod, inputs, out):
            self.sample(f"forward {name}")
            if getattr(out, "requires_grad", False):  # a tensor that autograd tracks
                # Fires when the gradient w.r.t. this output exists: this module's backward begins.
                out.register_hook(lambda g: self.sample(f"backward {name}"))
        return hook

    def sample(self, event: str) -> None:
        import torch

        from mfbench.measure import current_rss_bytes, nvml_process_bytes

        m: dict[str, float] = {"held_activation_bytes": self.meter.current}
        if self.cuda:  # allocator counters are host-side bookkeeping: exact without a sync
            m["allocated_bytes"] = torch.cuda.memory_allocated(self.device)
            m["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(self.device)
            nv = nvml_process_bytes(self.device)
            if nv is not None:
                m["nvml_process_bytes"] = nv
        else:
            m["rss_bytes"] = current_rss_bytes()
        self.samples.append({"epoch": self.epoch, "step": self.step, "sample": len(self.samples),
                             "event": event, "metrics": m})

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def memory_trace(cfg: RunConfig, steps: int, out: str, *, log: Callable[[str], None] = _log) -> pd.DataFrame:
    import torch

    from mfbench import metadata, run
    from mfbench.measure import SavedTensorMeter, sync

    if steps < 1:
        raise ConfigError(f"--steps must be a positive integer, got {steps!r}")
    device = cfg.resolved_device()
    splits = run.load_data(cfg, device)
    rule, phase = start_rule(cfg, device, splits)
    meter = SavedTensorMeter(exclude=rule.parameters())
    tracer = Tracer(rule, device, meter)
    batches = endless_batches(splits, cfg.batch_size, torch.Generator(device=device).manual_seed(cfg.seed))
    with meter.track():
        for step in range(1, steps + 1):
            epoch, xb, yb = next(batches)
            tracer.epoch, tracer.step = epoch, step
            if tracer.cuda:
                sync(device)
                torch.cuda.reset_peak_memory_stats(device)  # peak = within this step
            tracer.sample("step start")
            rule.train_step(xb, yb, phase)
            tracer.sample("step end")
            del xb, yb
    tracer.close()
    sync(device)
    base = {**run.row_base(cfg), "phase": phase, "split": "train", "unit": "bytes",
            "device": torch.device(device).type, "status": "ok"}
    rows = [{**base, "epoch": s["epoch"], "step": s["step"], "sample": s["sample"], "event": s["event"],
             "metric": k, "value": float(v)} for s in tracer.samples for k, v in s["metrics"].items()]
    df = pd.DataFrame(rows, columns=files.COLUMNS + EXTRA_COLUMNS)
    peak_held = df[df.metric == "held_activation_bytes"].value.max()
    log(f"memory-trace {cfg.algorithm} {cfg.dataset} {base['arch_detail']} batch {cfg.batch_size}: "
        f"{len(tracer.samples)} samples over {steps} steps, peak held activations {peak_held / 1e6:.2f} MB")
    files.write_json(metadata.collect(device, seed=cfg.seed, config=cfg.to_dict(), resolved_options=rule.opts,
                                      steps=steps, output=os.path.basename(out)), files.meta_path(out))
    files.write_csv(df, out)
    return df


# --- Fig. 3a/3b: peak memory vs depth -----------------------------------------------------
def at_depth(cfg: RunConfig, depth: int, batch_size: int) -> RunConfig:
    """The run config of one depth: an MLP of `depth` layers, or a CNN with the first `depth` channels."""
    if cfg.arch == "cnn":
        if depth > len(cfg.channels):
            raise ConfigError(f"CNN depth {depth} needs {depth} channel entries, channels has {len(cfg.channels)}: "
                              f"{cfg.channels}")
        return dataclasses.replace(cfg, channels=cfg.channels[:depth], batch_size=batch_size)
    return dataclasses.replace(cfg, depth=depth, batch_size=batch_size)


def measure_depth(cfg: RunConfig, splits: data.Splits, device: str, *, warmup_steps: int, steps: int
                  ) -> dict[str, float]:
    """Peak memory over `steps` training steps of a fresh model, after `warmup_steps` (optimizer state exists)."""
    import torch

    from mfbench.measure import PeakMemory, SavedTensorMeter

    rule, phase = start_rule(cfg, device, splits)
    batches = endless_batches(splits, cfg.batch_size, torch.Generator(device=device).manual_seed(cfg.seed))
    for _ in range(warmup_steps):
        _, xb, yb = next(batches)
        rule.train_step(xb, yb, phase)
        del xb, yb  # a full batch is large: do not carry it into the measured region
    meter = SavedTensorMeter(exclude=rule.parameters())
    with PeakMemory(device) as mem, meter.track():
        for _ in range(steps):
            _, xb, yb = next(batches)
            rule.train_step(xb, yb, phase)
    kind = torch.device(device).type
    out = {"held_activation_peak_bytes": float(meter.peak)}
    out.update({k: v for k, v in mem.metrics.items() if k in DEPTH_METRICS[kind]})
    out["param_bytes"] = float(sum(p.numel() * p.element_size() for p in rule.parameters()))
    return out


def memory_depth(cfg: RunConfig, depths: list[int], out: str, *, full_batch: bool, warmup_steps: int, steps: int,
                 seeds: list[int] | None = None, log: Callable[[str], None] = _log) -> pd.DataFrame:
    """Peak memory per depth; with `seeds`, per (seed, depth) (a fresh model each: paired-by-seed ratios)."""
    seeds = list(seeds) if seeds else [cfg.seed]
    if any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"--seeds must be non-negative integers, got {seeds!r}")
    if not depths or any(not isinstance(d, int) or d < 1 for d in depths):
        raise ConfigError(f"--depths must be positive integers, got {depths!r}")
    if steps < 1 or warmup_steps < 0:
        raise ConfigError(f"--steps must be >= 1 and --warmup-steps >= 0, got {steps!r} and {warmup_steps!r}")
    for d in depths:  # reject a bad depth before spending time on the good ones
        at_depth(cfg, d, cfg.batch_size)
    import torch

    from mfbench import metadata, run

    device = cfg.resolved_device()
    kind = torch.device(device).type
    splits = run.load_data(cfg, device)
    batch_size = len(splits.train[1]) if full_batch else cfg.batch_size
    rows = []
    for seed, d in [(s, d) for s in seeds for d in depths]:
        c = dataclasses.replace(at_depth(cfg, d, batch_size), seed=seed)
        status = "ok"
        try:
            metrics = measure_depth(c, splits, device, warmup_steps=warmup_steps, steps=steps)
        except torch.cuda.OutOfMemoryError:
            status = "oom"
            metrics = {k: math.nan for k in DEPTH_METRICS[kind]}
        free_memory(device)  # after the except block: the traceback no longer pins the model
        base = {**run.row_base(c), "phase": "", "split": "train", "epoch": math.nan, "device": kind,
                "status": status}
        rows += [{**base, "metric": k, "value": v, "unit": "bytes"} for k, v in metrics.items()]
        log(f"memory-depth {c.algorithm} {c.arch} depth {d} batch {batch_size}{f' seed {seed}' if len(seeds) > 1 else ''}: {status} "
            + " ".join(f"{k}={v / 1e6:.2f}MB" for k, v in metrics.items()))
    df = pd.DataFrame(rows, columns=files.COLUMNS + EXTRA_COLUMNS)
    files.write_json(metadata.collect(device, seed=seeds[0], config=cfg.to_dict(), depths=depths, seeds=seeds,
                                      full_batch=full_batch, batch_size=batch_size, warmup_steps=warmup_steps,
                                      steps=steps, output=os.path.basename(out)), files.meta_path(out))
    files.write_csv(df, out)
    return df


# --- slopes ---------------------------------------------------------------------------------
SLOPE_COLUMNS = ["experiment", "dataset", "arch", "algorithm", "device", "metric", "depths", "n", "slope", "stderr",
                 "intercept", "r2", "ci95_low", "ci95_high", "unit", "bytes_per_mb", "compared", "published", "source",
                 "flag", "note"]


def fit(depth, value) -> dict[str, float]:
    """Least-squares line through (depth, value): slope, its standard error, intercept, r^2, t-based 95% CI."""
    n = len(depth)
    if n < 2 or len(set(depth)) < 2:
        return {"n": n, "slope": math.nan, "stderr": math.nan, "intercept": math.nan, "r2": math.nan,
                "ci95_low": math.nan, "ci95_high": math.nan}
    from scipy import stats  # lazy: seconds to import, and only fitting needs it

    r = stats.linregress(depth, value)
    stderr = r.stderr
    if math.isnan(stderr):
        # linregress divides by the spread of `value`: a perfectly flat series (MF's held bytes)
        # gets NaN although its residuals, hence the slope's standard error, are exactly zero.
        x = pd.Series(depth, dtype=float)
        resid = pd.Series(value, dtype=float) - (r.slope * x + r.intercept)
        stderr = math.sqrt((resid ** 2).sum() / max(n - 2, 1) / ((x - x.mean()) ** 2).sum())
    half = stats.t.ppf(0.975, n - 2) * stderr if n > 2 else math.nan
    return {"n": n, "slope": float(r.slope), "stderr": float(stderr), "intercept": float(r.intercept),
            "r2": float(r.rvalue ** 2), "ci95_low": r.slope - half, "ci95_high": r.slope + half}


def _note(published: float, why_not: str) -> str:
    """Whether a fit may stand beside the published slope; the claims ledger judges it."""
    if math.isnan(published):
        return "no published value"
    return f"not comparable ({why_not})" if why_not else ""


def _why_not(dataset: str, metric: str, compare_metric: str) -> str:
    if dataset.startswith("synthetic-"):
        return "synthetic data"
    if metric != compare_metric:
        return f"{metric} is not the compared measure {compare_metric}"
    return ""


def slopes(df: pd.DataFrame, *, megabyte: float = 1e6, compare_metric: str = "peak_allocated_bytes",
           ratio: tuple[str, str] = ("bp", "mf")) -> pd.DataFrame:
    """One fitted line per (experiment, dataset, arch, algorithm, device, metric) over the `ok` depths,
    plus a BP/MF slope-ratio row per metric, each with the paper's value beside it."""
    from scipy import stats

    df = df[df.metric != "param_bytes"]  # context for readers, not a depth-scaling measure
    keys = ["experiment", "dataset", "arch", "algorithm", "device", "metric"]
    ref = reference.load(study="mono-forward", metric="peak_memory_slope")
    rows = []
    for key, g in df.groupby(keys, sort=True):
        k = dict(zip(keys, key))
        good = g[(g.status == "ok") & g.value.notna()]
        f = fit(good.depth.astype(float).tolist(), (good.value / megabyte).tolist())
        pub = ref[(ref.artefact == k["experiment"]) & (ref.arch == k["arch"]) & (ref.algorithm == k["algorithm"])
                  & (ref.dataset == k["dataset"].removeprefix("synthetic-"))]
        published = float(pub.value.iloc[0]) if len(pub) else math.nan
        depths = sorted(good.depth.astype(int))
        rows.append({**k, **f, "depths": f"{depths[0]}-{depths[-1]}" if depths else "", "unit": "MB/layer",
                     "bytes_per_mb": megabyte, "compared": k["metric"] == compare_metric, "published": published,
                     "source": pub.source.iloc[0] if len(pub) else "", "flag": pub.flag.iloc[0] if len(pub) else "",
                     "note": _note(published, _why_not(k["dataset"], k["metric"], compare_metric))})
    out = pd.DataFrame(rows, columns=SLOPE_COLUMNS)
    rows = []
    num, den = ratio
    for key, g in out.groupby(["experiment", "dataset", "arch", "device", "metric"], sort=True):
        a, b = g[g.algorithm == num], g[g.algorithm == den]
        if not len(a) or not len(b):
            continue
        a, b = a.iloc[0], b.iloc[0]
        r = a.slope / b.slope if b.slope != 0 else (math.inf if a.slope > 0 else math.nan)
        # delta method: relative errors add in quadrature
        se = abs(r) * math.hypot(a.stderr / a.slope, b.stderr / b.slope) if a.slope and b.slope else math.nan
        n = int(min(a.n, b.n))
        half = stats.t.ppf(0.975, n - 2) * se if n > 2 else math.nan
        published = a.published / b.published if b.published else math.nan
        rows.append({**dict(zip(["experiment", "dataset", "arch", "device", "metric"], key)),
                     "algorithm": f"{num}/{den}", "depths": a.depths, "n": n, "slope": r, "stderr": se,
                     "intercept": math.nan, "r2": math.nan, "ci95_low": r - half, "ci95_high": r + half,
                     "unit": "ratio", "bytes_per_mb": megabyte, "compared": a.compared, "published": published,
                     "source": a.source, "flag": a.flag, "note": _note(published, _why_not(key[1], key[4], compare_metric))})
    return pd.concat([out, pd.DataFrame(rows, columns=SLOPE_COLUMNS)], ignore_index=True) if rows else out


# --- CLI ------------------------------------------------------------------------------------
def _cmd_trace(args: argparse.Namespace) -> None:
    memory_trace(RunConfig.from_json(args.spec), args.steps, _csv(args.out))


def _cmd_depth(args: argparse.Namespace) -> None:
    memory_depth(RunConfig.from_json(args.spec), args.depths, _csv(args.out), full_batch=args.full_batch,
                 warmup_steps=args.warmup_steps, steps=args.steps, seeds=args.seeds)


def _cmd_slopes(args: argparse.Namespace) -> None:
    from mfbench.plots.memory import read_results  # the CSVs as the figures read them (matplotlib: lazily)

    _inputs(args.inputs)
    out = slopes(read_results(args.inputs), megabyte=args.megabyte, compare_metric=args.compare_metric)
    files.write_csv(out, _csv(args.out))
    cols = ["arch", "algorithm", "metric", "slope", "stderr", "unit", "published"]
    _log(out[cols].to_string(index=False))


def _cmd_plot_trace(args: argparse.Namespace) -> None:
    from mfbench.plots.memory import trace_figure

    _inputs(args.inputs)
    trace_figure(args.inputs, _png(args.out), megabyte=args.megabyte)


def _cmd_plot_depth(args: argparse.Namespace) -> None:
    from mfbench.plots.memory import depth_figure

    _inputs([*args.inputs, args.slopes])
    depth_figure(args.inputs, args.slopes, _png(args.out))


def _inputs(paths: list[str]) -> None:
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise ConfigError(f"input CSV(s) not found: {', '.join(missing)}")


def _png(path: str) -> str:
    if not path.endswith(".png"):
        raise ConfigError(f"--out must name a .png file (a .pdf is written beside it), got {path!r}")
    return path


def _csv(path: str) -> str:
    if not path.endswith(".csv"):
        raise ConfigError(f"--out must name a .csv file, got {path!r}")
    return path


def add_command(sub) -> None:
    t = sub.add_parser("memory-trace", help="Fig. 1/2: memory sampled at every layer's forward/backward and step")
    t.add_argument("--spec", required=True, help="JSON object of run keys (as `mfbench train --spec`)")
    t.add_argument("--steps", type=int, default=4, help="training steps traced, from the first")
    t.add_argument("--out", required=True, help="output CSV (metadata JSON is written beside it)")
    t.set_defaults(func=_cmd_trace)

    d = sub.add_parser("memory-depth", help="Fig. 3a/3b: peak training memory of depth 1..N, each in a fresh model")
    d.add_argument("--spec", required=True, help="JSON object of run keys; depth (MLP) / channels[:depth] (CNN) vary")
    d.add_argument("--depths", type=int, nargs="+", required=True, help="depths to measure")
    d.add_argument("--full-batch", action="store_true",
                   help="one batch = the whole training split (ignores batch_size)")
    d.add_argument("--warmup-steps", type=int, default=1, help="unmeasured steps first (allocates optimizer state)")
    d.add_argument("--steps", type=int, default=3, help="measured training steps per depth")
    d.add_argument("--seeds", type=int, nargs="+", help="measure each depth once per seed, a fresh model each "
                   "(default: the spec's seed)")
    d.add_argument("--out", required=True, help="output CSV (metadata JSON is written beside it)")
    d.set_defaults(func=_cmd_depth)

    s = sub.add_parser("memory-slopes", help="fitted MB/layer slopes per rule + BP/MF ratio, paper values beside")
    s.add_argument("inputs", nargs="+", help="memory-depth CSVs")
    s.add_argument("--out", required=True, help="slopes CSV")
    s.add_argument("--megabyte", type=_megabyte, default=1e6, help="bytes per MB (1e6 matches the paper's MF slope)")
    s.add_argument("--compare-metric", default="peak_allocated_bytes",
                   choices=sorted({m for ms in DEPTH_METRICS.values() for m in ms}),
                   help="measured metric the paper's slopes are judged against")
    s.set_defaults(func=_cmd_slopes)

    p = sub.add_parser("memory-plot-trace", help="Fig. 1/2 from memory-trace CSVs (one per rule, same axes)")
    p.add_argument("inputs", nargs="+", help="memory-trace CSVs")
    p.add_argument("--out", required=True, help="figure path (.png; a .pdf is written beside it)")
    p.add_argument("--megabyte", type=_megabyte, default=1e6, help="bytes per MB on the y axis")
    p.set_defaults(func=_cmd_plot_trace)

    p = sub.add_parser("memory-plot-depth", help="Fig. 3a/3b from memory-depth CSVs and their slopes CSV")
    p.add_argument("inputs", nargs="+", help="memory-depth CSVs of one architecture")
    p.add_argument("--slopes", required=True, help="memory-slopes CSV (fitted lines, paper values)")
    p.add_argument("--out", required=True, help="figure path (.png; a .pdf is written beside it)")
    p.set_defaults(func=_cmd_plot_depth)


def _megabyte(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {text!r}")
    return v
