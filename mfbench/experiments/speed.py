"""`mfbench speed`: what a training step and a job cost beyond their arithmetic (issue 8).

Printed, in one run (numbers from one machine, to compare with each other, not timed tests):

- kernel launches per training step of BP, MF and FF at each of `--depths`. On CUDA:
  kernel launch calls (cudaLaunchKernel and kin, a CUDA-graph launch counting one) seen
  by torch.profiler. On the CPU, as a proxy: the aten operators the backend executes that
  do work (views and bare allocations excluded; `launches_per_step`), with every optimizer
  switched to its fused implementation, as it runs on CUDA. MF is counted for each
  `update` (per_layer: the step as first written).
- MF/BP epoch time at `--depth` (the rules alternating, `bench.time_epochs`).
- seconds from process start to the first training step of `mfbench train` (and
  `mfbench --help`), by phase, from `--startup-repeats` fresh processes.
- on CUDA (or with `--vs-minimal`): steps per second of the runner's step against a
  minimal hand-written PyTorch step of the same maths on the same tensors, the practical limit,
  for every rule (`minimal.MINIMAL`: bp, mf in each update, ff, fa, dfa, fg, lbp on MLPs, sff on
  a CNN of `--cnn-channels`; the minimal steps live in experiments.minimal), the two
  alternating in rounds (`paired_rates`) so a shared machine's load falls on both alike.
- with `--plan CONFIG`: only the workflow's plan and GPU time estimate (experiments.timemodel).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

# A fresh `mfbench train` with its first training step as the end: for each phase, the
# monotonic clock (shared across processes: wall time from the spawn) and the process's CPU
# time (what the phase costs on an idle machine: other load adds waiting, not CPU time).
# Works on any version of the runner that loads data, calls run.build and draws shuffled
# batches from data.batches.
PROBE = r"""
import json, os, sys, time
def mark(k):
    marks[k] = (time.monotonic(), time.process_time())
marks = {}
mark("python")
import mfbench.run as run
from mfbench import data
mark("imports")
_train, _build, _batches = run.train, run.build, data.batches

def train(*a, **k):
    mark("cli")
    return _train(*a, **k)

def build(*a, **k):
    mark("data")
    rule = _build(*a, **k)
    mark("build")
    return rule

def batches(x, y, batch_size, generator=None):
    it = _batches(x, y, batch_size, generator)
    yield next(it)
    if generator is not None:  # a training epoch asks for its second batch: step 1 is done
        mark("first_step")
        print("MFBENCH_PROBE " + json.dumps(marks), flush=True)
        os._exit(0)
    yield from it

run.train, run.build, data.batches = train, build, batches
from mfbench import cli
sys.exit(cli.main(sys.argv[1:]))
"""
PHASES = [("python", "interpreter start"), ("imports", "import torch + the runner"),
          ("cli", "parse flags, validate the config"), ("data", "load the dataset"),
          ("build", "build the model"), ("first_step", "first training step")]


def startup(train_args: list[str], repeats: int) -> dict[str, dict[str, list[float]]]:
    """From spawning `mfbench train <train_args>` to the end of its first training step, per
    phase and in total, and for a whole `mfbench --help`, over `repeats` fresh processes:
    {"wall": {phase: seconds}, "cpu": {phase: CPU seconds}}."""
    keys = [k for k, _ in PHASES] + ["total", "help"]
    out = {"wall": {k: [] for k in keys}, "cpu": {k: [] for k in keys}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            t0 = time.monotonic()
            p = subprocess.run([sys.executable, "-c", PROBE, "train", *train_args, "--out", f"{tmp}/r{r}.csv"],
                               capture_output=True, text=True)
            line = [s for s in p.stdout.splitlines() if s.startswith("MFBENCH_PROBE ")]
            if not line:
                raise RuntimeError(f"the start-up probe did not reach a training step:\n{p.stderr[-2000:]}")
            marks = json.loads(line[0].split(" ", 1)[1])
            prev = (t0, 0.0)
            for k, _ in PHASES:
                out["wall"][k].append(marks[k][0] - prev[0])
                out["cpu"][k].append(marks[k][1] - prev[1])
                prev = marks[k]
            out["wall"]["total"].append(marks["first_step"][0] - t0)
            out["cpu"]["total"].append(marks["first_step"][1])
            t0, c0 = time.monotonic(), _children_cpu()
            subprocess.run([sys.executable, "-m", "mfbench.cli", "--help"], capture_output=True, check=True)
            out["wall"]["help"].append(time.monotonic() - t0)
            out["cpu"]["help"].append(_children_cpu() - c0)
    return out


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# --- launches per step -----------------------------------------------------------------------
_LAUNCH_CALLS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx",
                 "cudaLaunchCooperativeKernel", "cudaGraphLaunch")


def does_work(op) -> bool:
    """An aten operator that launches a kernel on a GPU: not a view (its output aliases an input
    without writing to it), not a bare allocation, not a profiler annotation."""
    name = op.__name__.split(".")[0]
    if "empty" in name or name.startswith("_record_function") or name == "_local_scalar_dense":  # .item(): a copy
        return False
    ret = op._schema.returns
    return not (ret and ret[0].alias_info is not None and not ret[0].alias_info.is_write)


def launches_per_step(step, x, y, phase: str, device: str, steps: int = 3) -> float:
    """Kernel launches per call of `step` after two warm-up calls (optimizer state, allocator,
    autotuning). CUDA: launch calls seen by torch.profiler. CPU: the aten operators the backend
    executes (after autograd and composite-op decomposition; a TorchDispatchMode sees each
    once, not the calls inside it) that do work (`does_work`): on a GPU about one launch each."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from mfbench.measure import sync

    for _ in range(2):
        step(x, y, phase)
    sync(device)
    if torch.device(device).type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step(x, y, phase)
            sync(device)
        return sum(e.name in _LAUNCH_CALLS for e in prof.events()) / steps

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += does_work(func)
            return func(*args, **(kwargs or {}))

    with Count():
        for _ in range(steps):
            step(x, y, phase)
    return Count.n / steps


def as_on_cuda(rule) -> None:
    """On the CPU, switch every optimizer of `rule` to its fused implementation (one call
    updates all its tensors), so the CPU count mirrors the CUDA step's launches."""
    for opt in rule.optimizers:
        for g in opt.param_groups:
            g["fused"], g["foreach"] = True, False


def paired_rates(fns: dict, device: str, steps: int, rounds: int, clock: str = "wall") -> dict[str, float]:
    """Steps per second of each callable: `rounds` rounds, each timing `steps` calls of every
    callable in turn, so load that comes and goes on a shared machine falls on all of them
    alike; the median round per callable. Three warm-up calls each first. clock 'cpu' (CPU
    only): this process's CPU time instead of wall time, which waiting for a busy core does
    not inflate (with one torch thread, an idle machine's wall time)."""
    import time

    from mfbench.measure import Timer

    for fn in fns.values():
        for _ in range(3):
            fn()
    per: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            if clock == "cpu" and device == "cpu":
                t0 = time.process_time()
                for _ in range(steps):
                    fn()
                per[k].append((time.process_time() - t0) / steps)
                continue
            with Timer(device) as t:
                for _ in range(steps):
                    fn()
            per[k].append(t.seconds / steps)
    return {k: 1 / sorted(v)[len(v) // 2] for k, v in per.items()}


def steps_per_second(fn, device: str, steps: int) -> float:
    return paired_rates({"": fn}, device, steps, 1)[""]


# --- the command ---------------------------------------------------------------------------------
def speed(args, log=print) -> None:
    import dataclasses

    import torch

    from mfbench import accel, run
    from mfbench.aggregate import order_stats
    from mfbench.config import ConfigError, RunConfig
    from mfbench.experiments import bench

    if not args.depths or min(args.depths) < 1 or args.width < 1 or args.batch_size < 1:
        raise ConfigError("--depths, --width and --batch-size must be positive integers")
    base = {"dataset": args.dataset, "arch": "mlp", "width": args.width, "batch_size": args.batch_size,
            "device": args.device, "seed": args.seed, "val_fraction": 0.0, "experiment": "speed"}
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.plan:  # the workflow's plan and GPU time alone: no measurement here
        from mfbench.experiments import timemodel

        return timemodel.report(args, log)
    cfg0 = RunConfig.from_dict({**base, "algorithm": "bp"})
    device = cfg0.resolved_device()
    splits = run.load_data(cfg0, device)
    x, y = bench.epoch_data(splits, args.batch_size)
    x, y = x[:args.batch_size], y[:args.batch_size]
    cuda = torch.device(device).type == "cuda"
    log(f"mfbench speed: {args.dataset}, width {args.width}, batch {args.batch_size}, device {device}"
        + ("" if cuda else f", {torch.get_num_threads()} thread(s)"))

    variants = [("bp", {}), ("mf", {"update": "per_layer"}), ("mf", {"update": "joint"}), ("mf", {"update": "batched"}),
                ("ff", {})]
    what = ("kernel launch calls per step (torch.profiler, CUDA)" if cuda else
            "aten ops that do work per step (CPU proxy for kernel launches, fused optimizers; see `mfbench speed -h`)")
    log(f"\n{what}")
    log(f"  {'rule':<16}" + "".join(f"{'depth ' + str(d):>10}" for d in args.depths))
    counts: dict[str, list[float]] = {}
    for alg, opts in variants:
        label = alg + (f"[{opts['update']}]" if opts else "")
        counts[label] = []
        for d in args.depths:
            cfg = RunConfig.from_dict({**base, "algorithm": alg, "depth": d, "options": opts})
            rule = run.build(cfg, device, splits)
            if not cuda:
                as_on_cuda(rule)
            rule.begin_phase("all")
            rule.train()
            counts[label].append(launches_per_step(accel.training_step(rule, cfg, device), x, y, "all", device))
        log(f"  {label:<16}" + "".join(f"{n:>10.0f}" for n in counts[label]))
    fewer = all(m < b for m, b in zip(counts["mf[batched]"], counts["bp"]))
    log(f"  MF (default, batched) needs fewer than BP at every depth: {'yes' if fewer else 'NO'}")

    rules = {a: run.build(RunConfig.from_dict({**base, "algorithm": a, "depth": args.depth}), device, splits)
             for a in ("bp", "mf")}
    xe, ye = bench.epoch_data(splits, args.n_train)
    times = bench.time_epochs(rules, xe, ye, args.batch_size, args.repeats, device, args.seed)
    med = {a: order_stats(ts) for a, ts in times.items()}
    log(f"\nepoch time, depth {args.depth}, {len(ye)} examples, median of {args.repeats} (rules alternating)")
    for a in rules:
        log(f"  {a}: {med[a]['median']:.3f} s (min {med[a]['min']:.3f})")
    log(f"  MF / BP: {med['mf']['median'] / med['bp']['median']:.3f} (fastest epochs: "
        f"{med['mf']['min'] / med['bp']['min']:.3f})")

    if args.startup_repeats:
        train_args = ["--algorithm", "mf", "--dataset", args.startup_dataset, "--depth", str(args.depth),
                      "--width", str(args.width), "--batch-size", str(args.batch_size), "--epochs", "1",
                      "--device", args.device]
        if args.data_dir:
            train_args += ["--data-dir", args.data_dir]
        st = startup(train_args, args.startup_repeats)
        log(f"\nprocess start to first training step (`mfbench train` on {args.startup_dataset}, "
            f"{args.startup_repeats} fresh processes): wall s median [min]; CPU s median (an idle machine's wall time)")
        for k, text in [*PHASES, ("total", "total"), ("help", "`mfbench --help`, whole process")]:
            w, c = order_stats(st["wall"][k]), order_stats(st["cpu"][k])
            log(f"  {text:<36}{w['median']:>8.2f} [{w['min']:.2f}]{c['median']:>8.2f}")

    if cuda or args.vs_minimal:
        vs_minimal(args, base, splits, device, x, y, log)


def vs_minimal(args, base, splits, device, x, y, log) -> dict[str, tuple[float, float]]:
    """Every rule of `minimal.MINIMAL` (MF in each update) at `--depth` (sff: on a CNN of `--cnn-channels`):
    the runner's step against the minimal step, the two alternating in `--minimal-rounds` rounds (`paired_rates`).
    {label: (runner steps/s, minimal steps/s)}."""
    import torch

    from mfbench import accel, run
    from mfbench.config import RunConfig
    from mfbench.experiments.minimal import VARIANTS, label, minimal_step

    log(f"\nsteps/s at depth {args.depth}, batch {args.batch_size}: the runner's step vs a minimal hand-written one "
        f"(same maths, same tensors; median of {args.minimal_rounds} alternating rounds of {args.minimal_steps} steps; "
        f"{'process CPU time' if args.clock == 'cpu' and device == 'cpu' else 'wall time'})")
    out = {}
    for alg, opts in VARIANTS:
        arch = {"arch": "cnn", "channels": args.cnn_channels} if alg == "sff" else {}  # sff needs conv blocks
        cfg = RunConfig.from_dict({**base, "algorithm": alg, "depth": args.depth, "options": opts, **arch})
        rule = run.build(cfg, device, splits)
        rule.begin_phase("all")
        rule.train()
        step, mine = accel.training_step(rule, cfg, device), minimal_step(rule)
        r = paired_rates({"runner": lambda: step(x, y, "all"), "minimal": lambda: mine(x, y)}, device,
                         args.minimal_steps, args.minimal_rounds, args.clock)
        out[label(rule)] = (r["runner"], r["minimal"])
        where = f" (cnn {'-'.join(map(str, args.cnn_channels))})" if alg == "sff" else ""
        log(f"  {label(rule):<14} runner {r['runner']:9.1f}  minimal {r['minimal']:9.1f}  "
            f"runner/minimal {r['runner'] / r['minimal']:.3f}{where}")
    if torch.device(device).type == "cuda" and args.compile != "off":
        for alg in ("bp", "mf"):
            cfg = RunConfig.from_dict({**base, "algorithm": alg, "depth": args.depth, "compile": args.compile})
            rule = run.build(cfg, device, splits)
            step = accel.training_step(rule, cfg, device)
            sr = steps_per_second(lambda: step(x, y, "all"), device, args.minimal_steps * args.minimal_rounds)
            log(f"  {label(rule)}: runner with compile={args.compile} {sr:9.1f}")
    log(f"  every rule at its default options; MF's default update on {device}: "
        f"{run.algorithms.RULES['mf'].device_update(device)}")
    return out


def add_command(sub) -> None:
    p = sub.add_parser("speed", help="launches per step (BP, MF, FF), MF/BP epoch time, start-up time (issue 8)")
    p.add_argument("--dataset", default="synthetic-mnist", help="data for the step and epoch measurements")
    p.add_argument("--data-dir", default=None, help="torchvision data root (env MFBENCH_DATA overrides)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--depths", type=int, nargs="+", default=[2, 4, 15], help="depths of the launch counts")
    p.add_argument("--depth", type=int, default=4, help="depth of the epoch-time, start-up and steps/s measurements")
    p.add_argument("--width", type=int, default=1000, help="MLP layer width")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size")
    p.add_argument("--n-train", type=int, default=60000, help="examples per timed epoch (synthetic data is tiled)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per rule")
    p.add_argument("--startup-repeats", type=int, default=3, help="fresh `mfbench train` processes timed (0 = skip)")
    p.add_argument("--startup-dataset", default="synthetic-mnist", help="dataset of the start-up runs (mnist: real)")
    p.add_argument("--vs-minimal", action="store_true", help="also compare with the minimal step off CUDA")
    p.add_argument("--minimal-steps", type=int, default=10, help="timed steps per round and side of that comparison")
    p.add_argument("--cnn-channels", type=int, nargs="+", default=[32, 64, 128],
                   help="channels of the CNN that sff (which needs conv blocks) is timed on in that comparison")
    p.add_argument("--minimal-rounds", type=int, default=20, help="alternating rounds of that comparison (median)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="the steps/s comparison's clock on the "
                   "CPU: wall, or this process's CPU time (a shared machine's waiting excluded)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 pins both sides "
                                                         "of every comparison to one core")
    p.add_argument("--plan", default=None, metavar="CONFIG", help="print the planned jobs, steps and a GPU wall-time "
                   "estimate of this workflow config (comma-separated overlays), with and without stacking, and stop")
    p.add_argument("--compile", default="reduce-overhead", help="CUDA: also time the runner's step compiled so (off: skip)")
    p.add_argument("--seed", type=int, default=0, help="init and batch-order seed")
    from mfbench.experiments import timemodel

    timemodel.add_arguments(p)
    p.set_defaults(func=lambda a: speed(a, log=lambda s: print(s, flush=True)))
