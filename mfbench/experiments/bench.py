"""`mfbench bench`: what Mono-Forward saves over backprop, measured in one run (issue 2).

Two numbers per rule, on the same data and device, both rules built by `run.build`:

- epoch time: median of `--repeats` timed epochs after one warm-up epoch. MF skips the
  input-gradient products backprop needs to reach earlier layers, so it should be faster.
  The rules alternate (step by step on CPU, epoch by epoch on GPU) so load from other
  processes hits both alike; both draw the same batch order from the same seed.
- bytes held for backward: `SavedTensorMeter` peak over one training step at each of
  `--depths`. BP holds every layer's activations until its backward pass; MF frees each
  layer's graph before the next layer runs, so its peak must not grow with depth.

Batches are index slices of device-resident tensors (`data.batches`), so the timed loop
is the rules' compute, not a data loader.
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch

from mfbench import data, files, metadata, run
from mfbench.algorithms import LearningRule
from mfbench.config import ConfigError, RunConfig, with_env
from mfbench.measure import SavedTensorMeter, Timer, summarize

RULES = ("bp", "mf")


def base_config(args: argparse.Namespace, algorithm: str, depth: int | None = None) -> RunConfig:
    spec = {"algorithm": algorithm, "dataset": args.dataset, "arch": "mlp", "depth": depth or args.depth,
            "width": args.width, "batch_size": args.batch_size, "device": args.device, "seed": args.seed,
            "val_fraction": 0.0,  # the whole training split is the epoch; nothing is evaluated
            "experiment": "bench"}
    spec = with_env(spec)  # precedence: --data-dir > env MFBENCH_DATA > default
    if args.data_dir is not None:
        spec["data_dir"] = args.data_dir
    return RunConfig.from_dict(spec)


def epoch_data(splits: data.Splits, n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_train` training examples (0 = all). Synthetic sets are small (6000), so they are
    tiled up to n_train: epoch time depends on the tensor shapes, not on the values."""
    x, y = splits.train
    if n_train == 0:
        return x, y
    if n_train > len(y):
        reps = -(-n_train // len(y))
        x, y = x.repeat(reps, *([1] * (x.dim() - 1))), y.repeat(reps)
    return x[:n_train].contiguous(), y[:n_train].contiguous()


def _epoch(rule: LearningRule, x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator) -> None:
    for phase in rule.phases():
        rule.begin_phase(phase)
        run.train_epoch(rule, x, y, batch_size, gen, phase)


def _lockstep_epoch(rules: dict[str, LearningRule], x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    gens: dict[str, torch.Generator]) -> dict[str, float]:
    """One epoch of every rule, alternating step by step; seconds per rule (batch slicing included)."""
    its = {name: data.batches(x, y, batch_size, gens[name]) for name in rules}
    total = dict.fromkeys(rules, 0.0)
    while True:
        for name, rule in rules.items():
            t0 = time.perf_counter()
            batch = next(its[name], None)
            if batch is None:  # same data and batch size: every rule runs out in the same round
                return total
            rule.train_step(*batch, rule.phases()[0])
            total[name] += time.perf_counter() - t0


def time_epochs(rules: dict[str, LearningRule], x: torch.Tensor, y: torch.Tensor, batch_size: int,
                repeats: int, device: str, seed: int) -> dict[str, list[float]]:
    """Seconds per epoch for each rule: one warm-up epoch, then `repeats` timed ones.

    GPU: whole epochs between CUDA events, the rules' epochs alternating (a per-step
    synchronisation would stall the launch queue). CPU: kernels run synchronously, so
    steps are timed one by one at no cost and the rules alternate step by step: load
    from other processes on a shared machine then falls on both rules alike.
    """
    for rule in rules.values():
        if len(rule.phases()) != 1:
            raise ConfigError(f"bench times single-phase schedules only; {rule.name} has phases {rule.phases()}")
    gens = {name: torch.Generator(device=device).manual_seed(seed) for name in rules}
    for name, rule in rules.items():
        rule.train()
        _epoch(rule, x, y, batch_size, gens[name])
    times: dict[str, list[float]] = {name: [] for name in rules}
    for _ in range(repeats):
        if torch.device(device).type == "cuda":
            for name, rule in rules.items():
                with Timer(device) as t:
                    _epoch(rule, x, y, batch_size, gens[name])
                times[name].append(t.seconds)
        else:
            for name, s in _lockstep_epoch(rules, x, y, batch_size, gens).items():
                times[name].append(s)
    return times


def held_bytes(rule: LearningRule, xb: torch.Tensor, yb: torch.Tensor) -> int:
    """Peak bytes saved for backward over one training step (parameters excluded)."""
    rule.train()
    phase = rule.phases()[0]
    rule.begin_phase(phase)
    rule.train_step(xb, yb, phase)  # first step allocates optimizer state; measure a steady one
    meter = SavedTensorMeter(exclude=rule.parameters())
    with meter.track():
        rule.train_step(xb, yb, phase)
    return meter.peak


def bench(args: argparse.Namespace, log=print) -> pd.DataFrame:
    for name in ("width", "depth", "batch_size", "repeats"):
        v = getattr(args, name)
        if v <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    if args.n_train < 0:
        raise ConfigError(f"--n-train must be >= 0 (0 = the whole training split), got {args.n_train}")
    if not args.depths or any(d <= 0 for d in args.depths):
        raise ConfigError(f"--depths must be positive integers, got {args.depths}")
    if args.out is not None and not args.out.endswith(".csv"):
        raise ConfigError(f"--out must name a .csv file, got {args.out!r}")

    cfgs = {a: base_config(args, a) for a in RULES}
    device = cfgs["bp"].resolved_device()
    splits = run.load_data(cfgs["bp"], device)
    x, y = epoch_data(splits, args.n_train)
    tiled = " (tiled)" if args.n_train > len(splits.train[1]) else ""
    threads = f", {torch.get_num_threads()} threads" if device == "cpu" else ""
    log(f"mfbench bench: {args.depth}x{args.width} MLP, batch {args.batch_size}, {args.dataset}, "
        f"{len(y)} training examples per epoch{tiled}, device {device}{threads}")

    rules = {a: run.build(c, device, splits) for a, c in cfgs.items()}
    times = time_epochs(rules, x, y, args.batch_size, args.repeats, device, args.seed)
    rows = []
    for a, ts in times.items():
        for i, s in enumerate(ts, 1):
            rows.append({**run.row_base(cfgs[a]), "epoch": i, "phase": "all", "split": "train",
                         "metric": "epoch_time", "value": s, "unit": "s"})
    del rules

    gen = torch.Generator(device=device).manual_seed(args.seed)
    xb, yb = next(data.batches(x, y, args.batch_size, gen))
    held: dict[tuple[str, int], int] = {}
    for depth in args.depths:
        for a in RULES:
            cfg = base_config(args, a, depth)
            held[a, depth] = held_bytes(run.build(cfg, device, splits), xb, yb)
            rows.append({**run.row_base(cfg), "epoch": 0, "phase": "all", "split": "train",
                         "metric": "saved_tensor_peak_bytes", "value": float(held[a, depth]), "unit": "bytes"})

    df = pd.DataFrame(rows).reindex(columns=run.COLUMNS)
    df["pred_mode"] = ""
    report(times, held, args, log)
    if args.out:
        files.write_json(metadata.collect(device, seed=args.seed, command="bench", args=vars(args) | {"func": None},
                                          output=os.path.basename(args.out)), run.meta_path(args.out))
        files.write_csv(df, args.out)
    return df


def _mib(b: float) -> str:
    return f"{b / 2**20:9.2f}"


def report(times: dict[str, list[float]], held: dict[tuple[str, int], int], args, log) -> None:
    med = {a: summarize(ts) for a, ts in times.items()}
    log(f"\nepoch time, s (median of {args.repeats} timed epochs after 1 warm-up epoch)")
    log(f"  {'rule':<6}{'median':>10}{'min':>10}{'max':>10}")
    for a in RULES:
        m = med[a]
        log(f"  {a:<6}{m['median']:>10.3f}{m['min']:>10.3f}{m['max']:>10.3f}")
    ratio = med["mf"]["median"] / med["bp"]["median"]
    log(f"  MF / BP epoch time: {ratio:.3f}  ({'MF faster' if ratio < 1 else 'MF not faster'})")
    # On a shared machine other load only adds time, so the fastest epoch is the least disturbed one.
    log(f"  MF / BP fastest epoch: {med['mf']['min'] / med['bp']['min']:.3f}  (less sensitive to other load)")

    log(f"\nactivations held for backward, MiB (peak over one training step, batch {args.batch_size}, "
        f"width {args.width})")
    log(f"  {'depth':<6}{'BP':>10}{'MF':>10}{'MF / BP':>10}")
    for d in args.depths:
        log(f"  {d:<6}{_mib(held['bp', d])} {_mib(held['mf', d])}{held['mf', d] / held['bp', d]:>10.3f}")
    mf = [held["mf", d] for d in args.depths]
    bp = [held["bp", d] for d in args.depths]
    flat = max(mf) == min(mf)
    grows = all(b1 > b0 for b0, b1 in zip(bp, bp[1:]))
    log(f"  MF held bytes across depths {args.depths}: {'flat' if flat else 'NOT flat'} "
        f"({min(mf)}..{max(mf)} bytes); BP: {'grows with depth' if grows else 'does NOT grow'} "
        f"({bp[0]}..{bp[-1]} bytes)")


def add_command(sub) -> None:
    p = sub.add_parser("bench", help="MF vs BP epoch time and bytes held for backward, in one run (issue 2)")
    p.add_argument("--dataset", default="synthetic-mnist",
                   help="MNIST-shaped by default; 'mnist' uses the real data (needs --data-dir or MFBENCH_DATA)")
    p.add_argument("--data-dir", default=None, help="torchvision data root (wins over env MFBENCH_DATA)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--width", type=int, default=1000, help="MLP layer width")
    p.add_argument("--depth", type=int, default=4, help="MLP hidden layers for the epoch-time comparison")
    p.add_argument("--batch-size", type=int, default=1024, help="training batch size")
    p.add_argument("--n-train", type=int, default=60000,
                   help="examples per timed epoch (MNIST's 60000 by default; 0 = the whole training split)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per rule (median reported)")
    p.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8], help="depths for held-activation bytes")
    p.add_argument("--seed", type=int, default=0, help="init and batch-order seed (shared by both rules)")
    p.add_argument("--out", default=None, help="optional tidy CSV of the measurements (metadata JSON beside it)")
    p.set_defaults(func=lambda args: bench(args, log=lambda s: print(s, flush=True)))

