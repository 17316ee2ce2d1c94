"""The one runner: train a learning rule, evaluate (every `eval_every` epochs), write a tidy CSV.

Resumable: after an epoch (at most every CHECKPOINT_SECONDS, and at every phase end)
the full state (rule, optimisers, RNGs, rows so far) goes atomically to
`<out>.ckpt.pt`; a killed run started again with the same config continues from
there and produces the same file as an uninterrupted run.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable

import pandas as pd
import torch

from mfbench import accel, algorithms, data, files, guards, metadata, models
from mfbench.config import RunConfig
from mfbench.files import COLUMNS, meta_path  # noqa: F401 (run.COLUMNS, run.meta_path: the run's file format)
from mfbench.measure import UNITS, PeakMemory, Timer

CHECKPOINT_SECONDS = 30.0  # at most one checkpoint per this much wall time, plus one per phase end
PROGRESS_SECONDS = 30.0  # a long epoch reports its batches, and unevaluated epochs a line, at most this often


def build(cfg: RunConfig, device: str, splits: data.Splits) -> algorithms.LearningRule:
    """Model + rule, initialised from cfg.seed alone (data loading draws no global RNG)."""
    accel.set_precision(cfg.precision)
    torch.manual_seed(cfg.seed)
    model = models.build(cfg, splits.in_shape)
    return algorithms.build(model, splits.num_classes, cfg).to(device)


def load_data(cfg: RunConfig, device: str) -> data.Splits:
    return data.load(cfg.dataset, cfg.resolved_data_dir(), device, val_fraction=cfg.val_fraction,
                     data_seed=cfg.data_seed, train_subset=cfg.train_subset, download=cfg.download,
                     input_norm=cfg.input_norm)


def arch_detail(cfg: RunConfig) -> str:
    return models.columns(cfg)["arch_detail"]


def row_base(cfg: RunConfig) -> dict[str, Any]:
    return {
        "experiment": cfg.experiment, "dataset": cfg.dataset, "arch": cfg.arch, **models.columns(cfg),
        "algorithm": cfg.algorithm, "schedule": cfg.schedule, "pred_mode": "",
        "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
    }


def train_epoch(rule: algorithms.LearningRule, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                gen: torch.Generator, phase: str, *, augment: bool = False,
                step: Callable | None = None, progress: Callable[[int], None] | None = None) -> dict[str, torch.Tensor]:
    """One shuffled pass over (x, y): the hot loop. Mean of each metric the rule reports,
    over the steps that report it, still on the device (no host sync per step). `step`: the
    rule's train_step as the run declares it (`accel.training_step`); the eager one by default.
    `progress(steps_done)` after every step."""
    rule.train()
    step = step or rule.train_step
    groups: dict[tuple[str, ...], list] = {}  # the keys a step reported -> [sum of their values, steps]
    steps = 0
    for xb, yb in data.batches(x, y, batch_size, gen):
        if augment:
            xb = data.augment(xb, gen)
        metrics = step(xb, yb, phase)
        vals = torch.stack(list(metrics.values()))  # two launches per step, however many metrics
        g = groups.get(tuple(metrics))
        if g is None:
            groups[tuple(metrics)] = [vals, 1]
        else:
            g[0], g[1] = g[0] + vals, g[1] + 1
        steps += 1
        if progress is not None:
            progress(steps)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for keys, (total, n) in groups.items():
        for k, v in zip(keys, total):
            sums[k] = sums[k] + v if k in sums else v
            counts[k] = counts.get(k, 0) + n
    return {k: v / counts[k] for k, v in sums.items()}


def _batch_progress(log: Callable[[str], None], prefix: str, total: int) -> Callable[[int], None]:
    """A `train_epoch` progress callback that logs 'batch i/total' at most every PROGRESS_SECONDS."""
    start = last = time.monotonic()

    def tick(step: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_SECONDS and step < total:
            last = now
            log(f"{prefix}: batch {step}/{total} ({100 * step / total:.0f} %, {now - start:.0f} s)")

    return tick


def lr_factor(schedule: str, in_phase: int, epochs: int) -> float:
    """The lr multiplier of a phase's epoch `in_phase` (1-based): constant; linear, from 1 down to 1/epochs,
    reaching zero at the end of the budget; cosine, 0.5 (1 + cos(pi (in_phase - 1) / epochs)). Per epoch, so
    a resumed run recomputes it from the epoch alone."""
    t = (in_phase - 1) / epochs
    return {"constant": 1.0, "linear": 1.0 - t, "cosine": 0.5 * (1.0 + math.cos(math.pi * t))}[schedule]


def set_lr(rule: algorithms.LearningRule, cfg: RunConfig, in_phase: int) -> None:
    if cfg.lr_schedule == "constant":
        return  # leave the optimisers untouched (a compiled step sees no new value)
    for opt in rule.optimizers:
        for g in opt.param_groups:
            g["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, in_phase, cfg.epochs)


@torch.no_grad()
def accuracy(rule: algorithms.LearningRule, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict[str, float]:
    """Accuracy (fraction in [0, 1]) for every prediction mode of the rule."""
    rule.eval()
    correct = {m: torch.zeros((), device=y.device) for m in rule.pred_modes}
    for xb, yb in data.batches(x, y, batch_size):
        for m, scores in rule.predict_all(xb).items():  # one forward pass for modes that share it
            correct[m] += (scores.argmax(-1) == yb).sum()
    return {m: c.item() / max(len(y), 1) for m, c in correct.items()}


@guards.guarded(companions=lambda out: [out + ".ckpt.pt", meta_path(out)])
def train(cfg: RunConfig, out: str, *, log: Callable[[str], None] | None = None,
          splits: data.Splits | None = None) -> pd.DataFrame:
    """Run `cfg`, write `out` + metadata. A run whose loss goes non-finite stops and is recorded
    as diverged (guards.DIVERGED row + metadata status), exit status 0: a result, not a crash.
    `splits`: the data `load_data(cfg)` gives, already loaded (several seeds in one process)."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    device = cfg.resolved_device()
    splits = splits or load_data(cfg, device)
    rule = build(cfg, device, splits)
    step = accel.training_step(rule, cfg, device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    base = row_base(cfg)
    rows: list[dict[str, Any]] = []
    done = 0
    stop = {"best": -math.inf, "since": 0, "phase": ""}  # early stopping on validation (cfg.patience)
    ckpt = out + ".ckpt.pt"
    st = guards.read_checkpoint(ckpt, device, log)  # a damaged one is set aside: start over
    if st is not None and st["config"] != cfg.to_dict():
        log(f"ignoring checkpoint {ckpt}: it was written for a different config")
        st = None
    if st is not None:
        try:
            rule.load_state(st["rule"])
            gen.set_state(st["generator"].cpu() if device == "cpu" else st["generator"])
            torch.set_rng_state(st["torch_rng"])
            if device == "cuda" and st.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(st["cuda_rng"])
        except Exception as e:  # right config, wrong tensors: as damaged as a truncated file
            guards.set_aside(ckpt, f"{type(e).__name__} restoring the state", log)
            st, rule = None, build(cfg, device, splits)  # a fresh start, exactly as if no file was there
            gen = torch.Generator(device=device).manual_seed(cfg.seed)
    if st is not None:
        rows, done = st["rows"], st["epochs_done"]
        stop.update(st.get("early_stop", {}))
        log(f"resuming {out} after epoch {done}")

    def emit(epoch, phase, split, metric, value, unit, pred_mode=""):
        rows.append({**base, "pred_mode": pred_mode, "epoch": epoch, "phase": phase, "split": split,
                     "metric": metric, "value": float(value), "unit": unit})

    xtr, ytr = splits.train
    epoch = 0
    last_save = last_line = -math.inf
    diverged = None
    # Jobs run side by side on one console: every line names its run.
    tag = f"[{cfg.experiment} {cfg.algorithm} {cfg.dataset} seed {cfg.seed}]"
    total = len(rule.phases()) * cfg.epochs
    batches = math.ceil(len(ytr) / cfg.batch_size)
    for phase in rule.phases():
        if diverged:
            break
        rule.begin_phase(phase)
        for in_phase in range(1, cfg.epochs + 1):
            epoch += 1
            if epoch <= done:
                continue
            if stop["phase"] == phase and cfg.patience and stop["since"] >= cfg.patience:
                continue  # this phase stopped early: its remaining epochs are not run (nor checkpointed)
            set_lr(rule, cfg, in_phase)
            with PeakMemory(device) as mem, Timer(device) as t:
                losses = train_epoch(rule, xtr, ytr, cfg.batch_size, gen, phase, augment=cfg.augment, step=step,
                                     progress=_batch_progress(log, f"{tag} epoch {epoch}/{total}", batches))
            label = rule.method_label
            for k, v in losses.items():  # one host sync per epoch, not per step
                emit(epoch, phase, "train", k, v.item(), rule.metric_units.get(k, "nats"), label)
            emit(epoch, phase, "train", "epoch_time", t.seconds, "s", label)
            for k, v in mem.metrics.items():
                emit(epoch, phase, "train", k, v, UNITS.get(k, "bytes"), label)
            diverged = guards.non_finite(losses, rule)
            if diverged:  # nothing left to learn or evaluate: record it and stop
                emit(epoch, phase, "train", guards.DIVERGED, 1, "flag", label)
                log(f"{tag} diverged at epoch {epoch} ({diverged}); "
                    f"recorded as diverged in {out}")
                break
            evals = ["val", "test"] if len(splits.val[1]) else ["test"]
            if in_phase % cfg.eval_every and in_phase < cfg.epochs:
                evals = []  # long full-batch schedules (FF: 1000 epochs per layer) evaluate sparsely
            elif cfg.eval_train:
                evals.insert(0, "train")
            msg = []
            for split in evals:
                for m, acc in accuracy(rule, *splits.split(split), cfg.eval_batch_size).items():
                    emit(epoch, phase, split, "accuracy", acc, "fraction", m)
                    msg.append(f"{split}[{m}]={acc:.4f}")
            if cfg.patience and "val" in evals:
                best = max(r["value"] for r in rows[-len(evals) * len(rule.pred_modes):] if r["split"] == "val"
                           and r["pred_mode"] in (cfg.stop_mode or r["pred_mode"]))  # stop_mode "": any mode
                if stop["phase"] != phase:  # greedy schedules: each layer's phase stops on its own
                    stop.update(best=-math.inf, since=0, phase=phase)
                if best > stop["best"]:
                    stop.update(best=best, since=0)
                else:
                    stop["since"] += 1
            if evals or time.monotonic() - last_line >= PROGRESS_SECONDS:  # FF's 1000s of tiny epochs: not each
                last_line = time.monotonic()
                log(f"{tag} epoch {epoch}/{total} ({phase}) loss={losses['loss'].item():.4f} "
                    f"{' '.join(msg)} {t.seconds:.2f}s")
            stopping = cfg.patience and stop["phase"] == phase and stop["since"] >= cfg.patience
            if stopping:
                log(f"{tag} early stop: no better validation accuracy in {cfg.patience} evaluations ({phase})")
            if time.monotonic() - last_save < CHECKPOINT_SECONDS and in_phase < cfg.epochs and not stopping:
                continue  # thousands of short full-batch epochs (FF study) need not each be saved
            last_save = time.monotonic()
            with files.atomic_path(ckpt) as tmp:
                torch.save({"config": cfg.to_dict(), "rule": rule.state(), "generator": gen.get_state(),
                            "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state() if device == "cuda" else None,
                            "rows": rows, "epochs_done": epoch, "early_stop": stop}, tmp)

    df = pd.DataFrame(rows, columns=COLUMNS)
    meta = metadata.collect(device, seed=cfg.seed, config=cfg.to_dict(), resolved_options=rule.opts,
                            output=os.path.basename(out), status=guards.DIVERGED if diverged else "ok",
                            diverged=diverged)
    files.write_csv_with_json(df, out, meta, meta_path(out), na_rep="nan")  # a NaN loss reads back as NaN
    if os.path.exists(ckpt):
        os.remove(ckpt)
    return df
