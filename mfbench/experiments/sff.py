"""Scalable Forward-Forward (Krutsylo, arXiv 2501.03176) against backprop on torchvision nets.

- `mfbench sff-bench`: SFF and BP built from two run specs on one machine, in one process:
  time per epoch (the rules' steps interleaved, as `mfbench bench` does) and the bytes autograd
  holds for backward over one step with the first k blocks of the stack trained, k = 1..all
  (plus the allocator's peak on GPU, peak RSS on CPU). SFF frees each block's graph before the
  next block runs, so its held bytes must stay at one block's while BP's add up.
- `mfbench sff-table`: final test accuracy over seeds for every (column, dataset, net, rule,
  prediction mode), and the bench's SFF/BP epoch-time and held-bytes ratios over seeds, as one
  tidy CSV plus two figures. A column is a run's `experiment` label; its training-set size and
  SFF granularity are read from each run's metadata (they are not CSV columns).
"""
from __future__ import annotations

import json
import os

from typing import TYPE_CHECKING

import pandas as pd

# torch and the torch-side modules are imported by the benchmark only: `sff-table` runs without them.
from mfbench import aggregate, files, reference
from mfbench.claims.quantities import epoch_time
from mfbench.config import ConfigError, RunConfig

if TYPE_CHECKING:
    from mfbench import algorithms, data

HELD = "saved_tensor_peak_bytes"


# --- the benchmark ------------------------------------------------------------------------------
def _prefix_rule(cfg: RunConfig, splits: data.Splits, k: int, device: str) -> algorithms.LearningRule:
    """The rule on the first k blocks of its stack, initialised from the spec's seed."""
    import torch

    from mfbench import algorithms, models

    torch.manual_seed(cfg.seed)
    stack = models.build(cfg, splits.in_shape).prefix(k)
    return algorithms.build(stack, splits.num_classes, cfg).to(device)


def bench(sff: RunConfig, bp: RunConfig, *, n_train: int, repeats: int, blocks: list[int] | None,
          log=print) -> pd.DataFrame:
    import torch

    from mfbench import data, models, run
    from mfbench.experiments.bench import epoch_data, held_bytes, time_epochs
    from mfbench.measure import PeakMemory

    if sff.algorithm != "sff" or bp.algorithm != "bp":
        raise ConfigError(f"--sff-spec must be an sff run and --bp-spec a bp run, got {sff.algorithm!r}, {bp.algorithm!r}")
    for k in ("dataset", "arch", "stem", "width_mult", "batch_size", "seed", "device"):
        if getattr(sff, k) != getattr(bp, k):
            raise ConfigError(f"both specs must share {k}: got {getattr(sff, k)!r} and {getattr(bp, k)!r}")
    if repeats < 1 or n_train < 0:
        raise ConfigError(f"--repeats must be >= 1 and --n-train >= 0, got {repeats} and {n_train}")
    device = sff.resolved_device()
    splits = run.load_data(sff, device)
    cfgs = {"sff": sff, "bp": bp}
    rules = {a: run.build(c, device, splits) for a, c in cfgs.items()}
    n_blocks = len(rules["bp"].model.blocks)
    blocks = blocks or list(range(1, n_blocks + 1))
    if any(not 1 <= k <= n_blocks for k in blocks):
        raise ConfigError(f"--blocks must lie in 1..{n_blocks} (the blocks of {sff.arch}), got {blocks}")
    x, y = epoch_data(splits, n_train)
    threads = f", {torch.get_num_threads()} thread(s)" if device == "cpu" else ""
    log(f"sff-bench: {models.columns(sff)['arch_detail']} on {sff.dataset}, batch {sff.batch_size}, "
        f"{len(y)} examples per timed epoch, device {device}{threads}")
    times = time_epochs(rules, x, y, sff.batch_size, repeats, device, sff.seed)
    del rules
    rows = []
    for a, ts in times.items():
        rows += [{**run.row_base(cfgs[a]), "epoch": i, "phase": "all", "split": "train", "metric": "epoch_time",
                  "value": s, "unit": "s"} for i, s in enumerate(ts, 1)]
    xb, yb = next(data.batches(x, y, sff.batch_size, torch.Generator(device=device).manual_seed(sff.seed)))
    held: dict[tuple[str, int], float] = {}
    for k in blocks:
        for a, c in cfgs.items():
            with PeakMemory(device) as mem:
                held[a, k] = float(held_bytes(_prefix_rule(c, splits, k, device), xb, yb))
            base = {**run.row_base(c), "depth": k, "epoch": 0, "phase": "all", "split": "train"}
            rows.append({**base, "metric": HELD, "value": held[a, k], "unit": "bytes"})
            rows += [{**base, "metric": m, "value": v, "unit": "bytes"} for m, v in mem.metrics.items()]
    df = pd.DataFrame(rows).reindex(columns=run.COLUMNS)
    df["pred_mode"] = ""
    _report(times, held, blocks, repeats, log)
    return df


def _report(times, held, blocks, repeats, log) -> None:
    med = {a: aggregate.order_stats(ts) for a, ts in times.items()}
    log(f"\nepoch time, s (median of {repeats} timed epochs after 1 warm-up epoch, steps of both rules interleaved)")
    for a in ("bp", "sff"):
        m = med[a]
        log(f"  {a:<4} median {m['median']:9.3f}  min {m['min']:9.3f}  max {m['max']:9.3f}")
    log(f"  SFF / BP epoch time: {med['sff']['median'] / med['bp']['median']:.3f} "
        f"(fastest epochs: {med['sff']['min'] / med['bp']['min']:.3f}; paper: 'similar training speed')")
    log("\nbytes held for backward, MiB (peak over one training step), by blocks trained")
    log(f"  {'blocks':<7}{'BP':>10}{'SFF':>10}{'SFF / BP':>10}")
    for k in blocks:
        log(f"  {k:<7}{held['bp', k] / 2**20:10.2f}{held['sff', k] / 2**20:10.2f}{held['sff', k] / held['bp', k]:10.3f}")
    lo, hi = blocks[0], blocks[-1]
    log(f"  from {lo} to {hi} blocks: BP holds {(held['bp', hi] - held['bp', lo]) / 2**20:+.2f} MiB more, SFF "
        f"{(held['sff', hi] - held['sff', lo]) / 2**20:+.2f} MiB (SFF holds one block's graph at a time: the largest "
        "block's bytes, never a sum)")


def _cmd_bench(args) -> None:
    sff, bp = RunConfig.from_json(args.sff_spec, "--sff-spec"), RunConfig.from_json(args.bp_spec, "--bp-spec")
    if args.out is not None and not args.out.endswith(".csv"):
        raise ConfigError(f"--out must name a .csv file, got {args.out!r}")
    df = bench(sff, bp, n_train=args.n_train, repeats=args.repeats, blocks=args.blocks,
               log=lambda s: print(s, flush=True))
    if args.out:
        from mfbench import metadata

        files.write_json(metadata.collect(sff.resolved_device(), sff_config=sff.to_dict(), bp_config=bp.to_dict(),
                                          n_train=args.n_train, repeats=args.repeats, output=os.path.basename(args.out)),
                         files.meta_path(args.out))
        files.write_csv(df, args.out)


# --- the table ----------------------------------------------------------------------------------
GROUP = ["experiment", "dataset", "arch", "arch_detail", "algorithm", "granularity", "train_subset"]


def _run_info(path: str) -> dict:
    """A run's training-set size and SFF granularity, from its metadata JSON."""
    try:
        with open(files.meta_path(path)) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: no readable metadata beside it ({files.meta_path(path)}): {e}") from None
    return {"train_subset": int(meta["config"]["train_subset"]),
            "granularity": meta.get("resolved_options", {}).get("granularity", "")}


def accuracy_rows(inputs: list[str]) -> pd.DataFrame:
    """Final (last-epoch) test accuracy of every run, then mean and 95% CI over seeds per cell."""
    fv = pd.concat([aggregate.final_values(aggregate.read([p]), split="test", metric="accuracy", selection="last")
                    .assign(**_run_info(p)) for p in inputs], ignore_index=True)
    if fv.empty:
        raise ConfigError(f"no test accuracy rows in {len(inputs)} run CSV(s): nothing to tabulate")
    clash = fv[fv.duplicated([*GROUP, "pred_mode", "seed"], keep=False)]
    if len(clash):
        raise ConfigError(f"{len(clash)} runs share every table column and seed (e.g. {clash.iloc[0][GROUP].to_dict()}); "
                          "give runs that differ otherwise distinct experiment labels")
    return aggregate.summarize(fv, [*GROUP, "pred_mode"]).assign(quantity="test_accuracy", unit="fraction")


def _per_seed(b: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One value per (bench cell, rule, seed): median epoch time after the first timed one (the ledger's
    `epoch_time`), or held bytes with every block trained."""
    cell = ["dataset", "arch", "arch_detail", "algorithm", "seed"]
    sub = b[b.metric == metric]
    if metric == "epoch_time":  # as the claims ledger reads it
        per = [epoch_time(g, "paper").rename("value").reset_index().assign(**dict(zip(cell[:-1], k)))
               for k, g in sub.groupby(cell[:-1])]
        return pd.concat(per, ignore_index=True)[cell + ["value"]]
    full = sub[sub.depth == sub.groupby(["dataset", "arch"]).depth.transform("max")]
    return full[[*cell, "value"]]


def cost_rows(bench_csvs: list[str]) -> pd.DataFrame:
    b = aggregate.read(bench_csvs)
    out = []
    for metric, unit in (("epoch_time", "s"), (HELD, "bytes")):
        v = _per_seed(b, metric)
        out.append(aggregate.summarize(v, ["dataset", "arch", "arch_detail", "algorithm"]).assign(
            quantity=metric, unit=unit))
        w = v.pivot_table(index=["dataset", "arch", "arch_detail", "seed"], columns="algorithm", values="value")
        if {"sff", "bp"} <= set(w.columns):
            r = (w["sff"] / w["bp"]).rename("value").reset_index()
            out.append(aggregate.summarize(r, ["dataset", "arch", "arch_detail"]).assign(
                quantity=f"{metric}_ratio_sff_over_bp", unit="x"))
    t = pd.concat(out, ignore_index=True)
    # the author's published epoch-time range (reference.csv), beside the matching ratio rows
    ref = reference.load(study="scalable-ff", artefact="sff_bench")
    real = t.dataset.str.removeprefix("synthetic-")
    is_ratio = t.quantity == "epoch_time_ratio_sff_over_bp"
    for bound in ("low", "high"):
        r = ref[ref.metric == f"epoch_time_ratio_sff_over_bp_{bound}"]
        t[f"published_{bound}"] = real.map(dict(zip(r.dataset, r.value))).where(is_ratio)
    t["source"] = real.map(dict(zip(ref.dataset, ref.source))).where(is_ratio).fillna("")
    return t


TABLE = ["quantity", *GROUP, "pred_mode", "n", "mean", "std", "ci95_low", "ci95_high", "unit", "published_low",
         "published_high", "source"]


def table(inputs: list[str], bench_csvs: list[str], out: str, figure: str, cost_figure: str) -> pd.DataFrame:
    t = pd.concat([accuracy_rows(inputs), cost_rows(bench_csvs)], ignore_index=True).reindex(columns=TABLE)
    files.write_csv(t, out)
    from mfbench.plots.sff import accuracy_figure
    from mfbench.plots.sff import cost_figure as draw_cost

    accuracy_figure(t, figure)
    draw_cost(t, aggregate.read(bench_csvs), cost_figure)
    return t


def add_command(sub) -> None:
    b = sub.add_parser("sff-bench", help="SFF-hybrid vs BP: epoch time and bytes held for backward, one run")
    b.add_argument("--sff-spec", required=True, help="JSON run keys of the SFF run (algorithm sff)")
    b.add_argument("--bp-spec", required=True, help="JSON run keys of the BP run (same data, net, batch, seed)")
    b.add_argument("--n-train", type=int, default=0,
                   help="examples per timed epoch (0 = the whole training split; a few batches on a CPU)")
    b.add_argument("--repeats", type=int, default=3, help="timed epochs per rule after one warm-up (median used)")
    b.add_argument("--blocks", type=int, nargs="+", default=None,
                   help="numbers of blocks trained at which held bytes are measured (default: 1..all)")
    b.add_argument("--out", default=None, help="optional tidy CSV of the measurements (+ .meta.json)")
    b.set_defaults(func=_cmd_bench)

    t = sub.add_parser("sff-table", help="SFF vs BP: accuracy over seeds, epoch-time and held-bytes ratios, figures")
    t.add_argument("inputs", nargs="+", help="run CSVs written by `mfbench train` (metadata JSON beside each)")
    t.add_argument("--bench", nargs="+", required=True, help="CSVs written by `mfbench sff-bench`")
    t.add_argument("--out", required=True, help="table CSV")
    t.add_argument("--figure", required=True, help="accuracy figure (.png; a .pdf is written beside it)")
    t.add_argument("--cost-figure", required=True, help="time and memory figure (.png; a .pdf beside it)")
    t.set_defaults(func=lambda a: table(a.inputs, a.bench, a.out, a.figure, a.cost_figure))

