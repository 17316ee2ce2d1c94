"""`mfbench plan CONFIG` (also `mfbench speed --plan CONFIG`): the workflow's training jobs, their steps, and a GPU wall-time estimate.

Jobs come from Snakemake's own dry run of the config (`snakemake -n -p`): every `mfbench train`
job with its spec (and `--seeds`), so the plan is the DAG, not a re-derivation of it. Jobs that
are not `mfbench train` (timing, memory, latency, FF/FG studies, summaries) are counted, not timed.

Per step, from one training step of the job's model on the meta device (shapes only, no data,
no arithmetic): FLOPs (torch.utils.flop_counter) and kernel launches (the aten ops that do work,
with fused optimizers, as `mfbench speed` counts them). A GPU step is bound by whichever is slower:
issuing its launches or doing its arithmetic, t = max(launches x launch_us, flops / tflops);
both constants are assumptions, printed with the result, to replace by `mfbench speed` measured on
the GPU. Stacked (table3.seed_stack k where a cell can stack): the same launches for k seeds, k
times the FLOPs, one job's start-up for k. Evaluation passes are not counted (a few % of a job).
"""
from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
from collections import Counter

TRAIN_SIZES = {"mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000, "cifar100": 50000, "svhn": 73257,
               "pathmnist": 89996}  # MedMNIST's train split; its val split is separate (not cut from train)


def planned_jobs(configfiles: list[str], extra: list[str] = ()) -> tuple[list[dict], Counter]:
    """({"spec", "seeds"} per `mfbench train` job, jobs per rule) of a dry run of the workflow."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "--configfile", *configfiles, *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"snakemake dry run failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    jobs, counts = [], Counter()
    for line in p.stdout.splitlines():
        m = re.match(r"^rule (\S+):$", line.strip()) or re.match(r"^localrule (\S+):$", line.strip())
        if m:
            counts[m.group(1)] += 1
        if "mfbench train --spec" in line:
            argv = shlex.split(line.split("2>&1")[0])
            spec = json.loads(argv[argv.index("--spec") + 1])
            seeds = [spec["seed"]] if "seed" in spec else []  # a job over several seeds names them in --seeds
            if "--seeds" in argv:
                i = argv.index("--seeds") + 1
                seeds = []
                while i < len(argv) and argv[i].isdigit():
                    seeds.append(int(argv[i]))
                    i += 1
            k = int(argv[argv.index("--seed-stack") + 1]) if "--seed-stack" in argv else 1
            jobs.append({"spec": spec, "seeds": seeds, "stack": k})
    return jobs, counts


def steps_of(spec: dict) -> int:
    """Training steps of one seed: epochs x phases x batches of its training split."""
    from mfbench.data import get_spec

    ds = spec["dataset"].removeprefix("synthetic-")
    n = 6000 if spec["dataset"].startswith("synthetic-") else TRAIN_SIZES[ds]
    if spec.get("classes"):  # a transfer task keeps these classes' examples only
        n = n * len(spec["classes"]) // get_spec(spec["dataset"]).num_classes
    if not get_spec(spec["dataset"]).medmnist:  # MedMNIST ships its own val split
        n = int(n * (1 - spec.get("val_fraction", 0.1)))
    n = min(n, spec.get("train_subset") or n)  # data.load cuts the subset after holding out val
    phases = spec.get("depth", 2) if spec.get("schedule") == "greedy" else 1
    if spec.get("schedule") == "greedy" and spec.get("arch") == "cnn":
        phases = len(spec.get("channels", [64, 128, 256, 512]))
    return spec.get("epochs", 3) * phases * math.ceil(n / spec.get("batch_size", 128))


def step_cost(spec: dict) -> tuple[float, float]:
    """(FLOPs, launches) of one training step of `spec`'s model as it runs on CUDA, on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mfbench import algorithms, models
    from mfbench.config import RunConfig
    from mfbench.data import get_spec
    from mfbench.experiments.speed import does_work
    from torch.utils._python_dispatch import TorchDispatchMode

    keys = {k: v for k, v in spec.items() if k not in ("data_dir", "download", "device")}
    if keys.get("algorithm") == "mf":  # the update `auto` takes on CUDA
        keys["options"] = {"update": algorithms.RULES["mf"].device_update("cuda"), **keys.get("options", {})}
    cfg = RunConfig.from_dict({**keys, "device": "cpu", "seed_stack": 1})
    ds = get_spec(cfg.dataset)
    with torch.device("meta"):
        rule = algorithms.build(models.build(cfg, ds.shape), ds.num_classes, cfg)
        x, y = torch.empty(cfg.batch_size, *ds.shape), torch.zeros(cfg.batch_size, dtype=torch.long)
    for opt in rule.optimizers:  # fused kernels have no meta implementation: foreach, counted as fused below
        for g in opt.param_groups:
            g["fused"], g["foreach"] = False, True
    phase = rule.phases()[-1] if cfg.schedule == "greedy" else rule.phases()[0]
    rule.begin_phase(phase)
    rule.train()

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += does_work(func) and not func.__name__.startswith("_foreach_")
            return func(*args, **(kwargs or {}))

    rule.train_step(x, y, phase)  # optimizer state exists from here on, as in every later step
    with FlopCounterMode(display=False) as fc, Count():
        rule.train_step(x, y, phase)
    # each optimizer's step on CUDA: one fused kernel plus its step-count increment (`mfbench speed` counts)
    return float(fc.get_total_flops()), float(Count.n + 2 * len(rule.optimizers))


def estimate(jobs: list[dict], launch_us: float, tflops: float, job_s: float, log) -> dict[str, float]:
    """GPU seconds of the planned training jobs, unstacked and as planned (stacked where a job says so)."""
    costs: dict[str, tuple[float, float]] = {}
    seconds = {"separate": 0.0, "stacked": 0.0}
    n_jobs = {"separate": 0, "stacked": 0}
    steps_total = 0
    by_exp: Counter = Counter()
    for j in jobs:
        spec = j["spec"]
        key = json.dumps({k: v for k, v in spec.items() if k not in ("seed", "experiment", "lr", "weight_decay",
                                                                      "data_dir", "epochs")}, sort_keys=True)
        if key not in costs:
            try:
                costs[key] = step_cost(spec)
            except Exception as e:  # a step the meta device cannot run (data-dependent control flow)
                log(f"  (not costed: {spec['algorithm']} {spec.get('arch')} {spec['dataset']}: {type(e).__name__})")
                costs[key] = (math.nan, math.nan)
        flops, launches = costs[key]
        if math.isnan(flops):
            continue
        steps = steps_of(spec)
        seeds, k = len(j["seeds"]), j["stack"]
        steps_total += steps * seeds
        one = max(launches * launch_us * 1e-6, flops / (tflops * 1e12))
        seconds["separate"] += seeds * (steps * one + job_s)
        n_jobs["separate"] += seeds
        groups = math.ceil(seeds / k)
        stacked = max(launches * launch_us * 1e-6, k * flops / (tflops * 1e12))
        seconds["stacked"] += groups * steps * stacked + job_s
        by_exp[spec.get("experiment", "train")] += groups * steps * stacked + job_s
        n_jobs["stacked"] += 1
    return {**seconds, "jobs_separate": n_jobs["separate"], "jobs_stacked": n_jobs["stacked"], "steps": steps_total,
            "shapes": len(costs), "by_experiment": by_exp}


def report(args, log) -> None:
    configs = args.plan.split(",")
    for stack in (1, args.plan_stack):
        extra = ["--config", f"table3={{seed_stack: {stack}}}"] if stack > 1 else []
        jobs, counts = planned_jobs(configs, extra)
        est = estimate(jobs, args.launch_us, args.gpu_tflops, args.job_overhead_s, log)
        what = "as configured" if stack == 1 else f"table3.seed_stack={stack}"
        log(f"\nplan of {args.plan} ({what}): {sum(counts.values())} jobs, {len(jobs)} `mfbench train` jobs "
            f"({est['jobs_separate']} seed runs, {est['shapes']} distinct steps costed), {est['steps']:,} training steps")
        log(f"  GPU wall time of the training jobs, one GPU, one job at a time: "
            f"{est['separate' if stack == 1 else 'stacked'] / 3600:.2f} h")
        top = ", ".join(f"{e} {t / 3600:.2f} h" for e, t in est["by_experiment"].most_common(6))
        log(f"  largest (experiment label): {top}")
        if stack == 1:
            others = {r: n for r, n in counts.items() if r not in ("table3_run", "table3_cell") and not r.endswith("run")}
            log(f"  not timed (not `mfbench train`): {sum(others.values())} jobs")
    log(f"  assumptions: a launch costs {args.launch_us} us of host time (eager PyTorch), {args.gpu_tflops} fp32 "
        f"TFLOP/s achieved, {args.job_overhead_s} s start-up per job (`mfbench speed` start-up probe); "
        f"step = max(launches x launch time, FLOPs / throughput); evaluation not counted")


def add_arguments(p) -> None:
    p.add_argument("--plan-stack", type=int, default=10, help="seed_stack of the plan's stacked variant")
    p.add_argument("--launch-us", type=float, default=10.0, help="host time per kernel launch (eager), microseconds")
    p.add_argument("--gpu-tflops", type=float, default=25.0, help="achieved fp32 TFLOP/s of the GPU")
    p.add_argument("--job-overhead-s", type=float, default=10.0, help="process start-up and data load per job, s")


def add_command(sub) -> None:
    p = sub.add_parser("plan", help="planned jobs, steps and GPU wall time of a workflow config, stacked and not")
    p.add_argument("plan", metavar="CONFIG", help="workflow config file(s), comma-separated (later ones overlay)")
    add_arguments(p)
    p.set_defaults(func=lambda a: report(a, log=lambda s: print(s, flush=True)))
