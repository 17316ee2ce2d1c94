"""The one runner: train a learning rule, evaluate (every `eval_every` epochs), write a tidy CSV.

Resumable: after an epoch (at most every CHECKPOINT_SECONDS, and at every phase end)
the full state (rule, optimisers, RNGs, rows so far) goes atomically to
`<out>.ckpt.pt`; a killed run started again with the same config continues from
there and produces the same file as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from typing import Any, Callable

import pandas as pd
import torch

from mfbench import accel, algorithms, data, files, guards, metadata, models
from mfbench.config import ConfigError, RunConfig
from mfbench.files import COLUMNS, meta_path, weights_path  # noqa: F401 (run.COLUMNS, run.meta_path: the run's file format)
from mfbench.measure import UNITS, PeakMemory, Timer

CHECKPOINT_SECONDS = 30.0  # at most one checkpoint per this much wall time, plus one per phase end
PROGRESS_SECONDS = 30.0  # a long epoch reports its batches, and unevaluated epochs a line, at most this often


def build(cfg: RunConfig, device: str, splits: data.Splits) -> algorithms.LearningRule:
    """Model + rule, initialised from cfg.seed alone (data loading draws no global RNG)."""
    accel.set_precision(cfg.precision)
    torch.manual_seed(cfg.seed)
    model = models.build(cfg, splits.in_shape)
    return algorithms.build(model, splits.num_classes, cfg).to(device)


def load_pretrained(rule: algorithms.LearningRule, cfg: RunConfig, device: str) -> None:
    """Transfer (`init_from`): the net's layers from a finished pretrain run's weights; the rule's own
    readout (BP's head, SFF's auxiliary convs) keeps its fresh init from cfg.seed, as the classes are new.
    `transfer_train` head: the net is frozen (its batch-norm statistics still adapt to the new data)."""
    if not cfg.init_from:
        return
    if not os.path.exists(cfg.init_from):
        raise ConfigError(f"init_from {cfg.init_from!r} not found: run the pretrain job first (a run with "
                          "save_weights writes <out>.weights.pt)")
    st = torch.load(cfg.init_from, map_location=device, weights_only=True)
    net = {k.removeprefix("model."): v for k, v in st["module"].items() if k.startswith("model.")}
    try:
        rule.model.load_state_dict(net)
    except RuntimeError as e:
        raise ConfigError(f"init_from {cfg.init_from!r}: its net is not this run's (arch, channels, stem, "
                          f"width_mult must match): {str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}"
                          ) from None
    if cfg.transfer_train == "head":
        rule.model.requires_grad_(False)


def load_data(cfg: RunConfig, device: str) -> data.Splits:
    return data.load(cfg.dataset, cfg.resolved_data_dir(), device, val_fraction=cfg.val_fraction,
                     data_seed=cfg.data_seed, train_subset=cfg.train_subset, download=cfg.download,
                     input_norm=cfg.input_norm, classes=cfg.classes)


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


class _Run:
    """One seed's run around its training epochs: the rule (restored from its checkpoint when one
    matches), its rows, evaluation, early stopping, divergence, checkpoints and its CSV. `train`
    drives one; `train_stacked` drives k in lockstep, their epochs computed as one stacked model."""

    def __init__(self, cfg: RunConfig, out: str, log: Callable[[str], None], splits: data.Splits, device: str):
        self.cfg, self.out, self.log, self.splits, self.device = cfg, out, log, splits, device
        self.rule = rule = build(cfg, device, splits)
        load_pretrained(rule, cfg, device)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.base = row_base(cfg)
        self.rows: list[dict[str, Any]] = []
        self.done = 0
        self.stop = {"best": -math.inf, "since": 0, "phase": ""}  # early stopping on validation (cfg.patience)
        self.ckpt = ckpt = out + ".ckpt.pt"
        self.diverged: str | None = None
        # stacked: the global RNG (CPU and CUDA) as this seed's own run holds it (train_stacked keeps it)
        self.rng: dict[str, torch.Tensor | None] | None = None
        self.last_save = self.last_line = -math.inf
        # Jobs run side by side on one console: every line names its run.
        self.tag = f"[{cfg.experiment} {cfg.algorithm} {cfg.dataset} seed {cfg.seed}]"
        self.total = len(rule.phases()) * cfg.epochs
        st = guards.read_checkpoint(ckpt, device, log)  # a damaged one is set aside: start over
        if st is not None and st["config"] != cfg.to_dict():
            log(f"ignoring checkpoint {ckpt}: it was written for a different config")
            st = None
        if st is not None:
            try:
                rule.load_state(st["rule"])
                self.gen.set_state(st["generator"].cpu() if device == "cpu" else st["generator"])
                torch.set_rng_state(st["torch_rng"])
                if device == "cuda" and st.get("cuda_rng") is not None:
                    torch.cuda.set_rng_state(st["cuda_rng"])
            except Exception as e:  # right config, wrong tensors: as damaged as a truncated file
                guards.set_aside(ckpt, f"{type(e).__name__} restoring the state", log)
                st, self.rule = None, build(cfg, device, splits)  # a fresh start, exactly as if no file was there
                load_pretrained(self.rule, cfg, device)
                self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        if st is not None:
            self.rows, self.done = st["rows"], st["epochs_done"]
            self.stop.update(st.get("early_stop", {}))
            log(f"resuming {out} after epoch {self.done}")

    def wants(self, epoch: int, phase: str) -> bool:
        """Whether this run trains `epoch` (not done before a resume, not stopped early, not diverged)."""
        if self.diverged or epoch <= self.done:
            return False
        # a phase stopped early: its remaining epochs are not run (nor checkpointed)
        return not (self.stop["phase"] == phase and self.cfg.patience and self.stop["since"] >= self.cfg.patience)

    def emit(self, epoch, phase, split, metric, value, unit, pred_mode=""):
        self.rows.append({**self.base, "pred_mode": pred_mode, "epoch": epoch, "phase": phase, "split": split,
                          "metric": metric, "value": float(value), "unit": unit})

    def after_epoch(self, epoch: int, phase: str, in_phase: int, losses: dict[str, torch.Tensor], seconds: float,
                    mem: dict[str, float]) -> None:
        """Rows, divergence, evaluation, early stopping and the checkpoint of a trained epoch."""
        cfg, rule, emit, log, tag = self.cfg, self.rule, self.emit, self.log, self.tag
        label = rule.method_label
        for k, v in losses.items():  # one host sync per epoch, not per step
            emit(epoch, phase, "train", k, v.item(), rule.metric_units.get(k, "nats"), label)
        emit(epoch, phase, "train", "epoch_time", seconds, "s", label)
        for k, v in mem.items():
            emit(epoch, phase, "train", k, v, UNITS.get(k, "bytes"), label)
        self.diverged = guards.non_finite(losses, rule)
        if self.diverged:  # nothing left to learn or evaluate: record it and stop
            emit(epoch, phase, "train", guards.DIVERGED, 1, "flag", label)
            log(f"{tag} diverged at epoch {epoch} ({self.diverged}); recorded as diverged in {self.out}")
            return
        splits, stop = self.splits, self.stop
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
            best = max(r["value"] for r in self.rows[-len(evals) * len(rule.pred_modes):] if r["split"] == "val"
                       and r["pred_mode"] in (cfg.stop_mode or r["pred_mode"]))  # stop_mode "": any mode
            if stop["phase"] != phase:  # greedy schedules: each layer's phase stops on its own
                stop.update(best=-math.inf, since=0, phase=phase)
            if best > stop["best"]:
                stop.update(best=best, since=0)
            else:
                stop["since"] += 1
        if evals or time.monotonic() - self.last_line >= PROGRESS_SECONDS:  # FF's 1000s of tiny epochs: not each
            self.last_line = time.monotonic()
            log(f"{tag} epoch {epoch}/{self.total} ({phase}) loss={losses['loss'].item():.4f} "
                f"{' '.join(msg)} {seconds:.2f}s")
        stopping = cfg.patience and stop["phase"] == phase and stop["since"] >= cfg.patience
        if stopping:
            log(f"{tag} early stop: no better validation accuracy in {cfg.patience} evaluations ({phase})")
        if time.monotonic() - self.last_save < CHECKPOINT_SECONDS and in_phase < cfg.epochs and not stopping:
            return  # thousands of short full-batch epochs (FF study) need not each be saved
        self.last_save = time.monotonic()
        with files.atomic_path(self.ckpt) as tmp:
            torch.save({"config": cfg.to_dict(), "rule": rule.state(), "generator": self.gen.get_state(),
                        "torch_rng": torch.get_rng_state() if self.rng is None else self.rng["torch_rng"],
                        "cuda_rng": (torch.cuda.get_rng_state() if self.rng is None else self.rng["cuda_rng"])
                        if self.device == "cuda" else None,
                        "rows": self.rows, "epochs_done": epoch, "early_stop": stop}, tmp)

    def finish(self, **meta_extra: Any) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=COLUMNS)
        if self.cfg.init_from:  # which pretrain weights this transfer run started from
            meta_extra["init_from_sha256"] = files.file_sha256(self.cfg.init_from)
        if self.cfg.save_weights:  # before the CSV: a finished CSV means its weights exist
            with files.atomic_path(weights_path(self.out)) as tmp:
                torch.save({"module": self.rule.state_dict(), "config": self.cfg.to_dict()}, tmp)
        meta = metadata.collect(self.device, seed=self.cfg.seed, config=self.cfg.to_dict(),
                                resolved_options=self.rule.opts, output=os.path.basename(self.out),
                                status=guards.DIVERGED if self.diverged else "ok", diverged=self.diverged, **meta_extra)
        files.write_csv_with_json(df, self.out, meta, meta_path(self.out), na_rep="nan")  # a NaN loss reads back as NaN
        if os.path.exists(self.ckpt):
            os.remove(self.ckpt)
        return df


def _default_log(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


@guards.guarded(companions=lambda out: [out + ".ckpt.pt", meta_path(out), weights_path(out)])
def train(cfg: RunConfig, out: str, *, log: Callable[[str], None] | None = None,
          splits: data.Splits | None = None) -> pd.DataFrame:
    """Run `cfg`, write `out` + metadata. A run whose loss goes non-finite stops and is recorded
    as diverged (guards.DIVERGED row + metadata status), exit status 0: a result, not a crash.
    `splits`: the data `load_data(cfg)` gives, already loaded (several seeds in one process)."""
    log = log or _default_log
    device = cfg.resolved_device()
    splits = splits or load_data(cfg, device)
    r = _Run(cfg, out, log, splits, device)
    rule = r.rule
    step = accel.training_step(rule, cfg, device)
    xtr, ytr = splits.train
    epoch = 0
    batches = math.ceil(len(ytr) / cfg.batch_size)
    for phase in rule.phases():
        if r.diverged:
            break
        rule.begin_phase(phase)
        for in_phase in range(1, cfg.epochs + 1):
            epoch += 1
            if not r.wants(epoch, phase):
                continue
            set_lr(rule, cfg, in_phase)
            with PeakMemory(device) as mem, Timer(device) as t:
                losses = train_epoch(rule, xtr, ytr, cfg.batch_size, r.gen, phase, augment=cfg.augment, step=step,
                                     progress=_batch_progress(log, f"{r.tag} epoch {epoch}/{r.total}", batches))
            r.after_epoch(epoch, phase, in_phase, losses, t.seconds, mem.metrics)
            if r.diverged:
                break
    return r.finish()


def train_stacked(cfgs: list[RunConfig], outs: list[str], *, log: Callable[[str], None] | None = None,
                  splits: data.Splits | None = None) -> list[pd.DataFrame]:
    """The seeds `cfgs` (one config but the seed; `seed_stack` of them) trained as one stacked model
    (algorithms.stacking): each seed's init, batch order, rows, checkpoint and CSV as its separate
    run's, float rounding apart. A seed that diverges, stops early or is still ahead after a resume
    sits out of the stack; the others go on. Its rows' epoch_time is the stacked epoch's wall time."""
    from mfbench.algorithms.stacking import Stack

    log = log or _default_log
    if len({json.dumps({**c.to_dict(), "seed": 0}, sort_keys=True) for c in cfgs}) != 1:
        raise ValueError("train_stacked: the configs must differ in their seed alone")
    for c, out in zip(cfgs, outs):
        files.check_writable(out)
        guards.check_memory(c, c.resolved_device())
    device = cfgs[0].resolved_device()
    splits = splits or load_data(cfgs[0], device)
    with contextlib.ExitStack() as locks:
        for out in outs:
            locks.enter_context(files.exclusive(out))
            files.remove_stale_tmp(out, out + ".ckpt.pt", meta_path(out), all_of_them=True)
        runs = []
        for c, o in zip(cfgs, outs):
            runs.append(_Run(c, o, log, splits, device))
            # The global RNG as this seed's run left it after its build (or checkpoint): a stacked
            # step draws each seed's random numbers (FF's negative labels) from a generator in this
            # state, so they are the draws of its separate run, and its checkpoint saves where it got to.
            runs[-1].rng = {"torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state() if device == "cuda" else None}
        xtr, ytr = splits.train
        bs = cfgs[0].batch_size
        stack, members = None, []
        for epoch in range(1, cfgs[0].epochs + 1):
            active = [r for r in runs if r.wants(epoch, "all")]
            if not active:
                continue
            if [id(r) for r in active] != [id(r) for r in members]:  # (re)stack from the rules as they stand
                if stack is not None:
                    stack.to_rules()
                members = active
                for r in members:
                    r.rule.begin_phase("all")
                    r.rule.train()
                rngs = []
                for r in members:
                    g = torch.Generator(device=device)
                    g.set_state(r.rng["cuda_rng" if device == "cuda" else "torch_rng"])
                    rngs.append(g)
                stack = Stack([r.rule for r in members], rngs)
            with PeakMemory(device) as mem, Timer(device) as t:
                perms = torch.stack([torch.randperm(len(ytr), generator=r.gen, device=r.gen.device)
                                     for r in members])  # each seed's own batch order, as data.batches draws it
                sums: dict[str, torch.Tensor] = {}
                steps = 0
                for i in range(0, len(ytr), bs):
                    idx = perms[:, i:i + bs]  # (k, B)
                    for k, v in stack.step(xtr[idx], ytr[idx]).items():
                        sums[k] = sums[k] + v if k in sums else v
                    steps += 1
                stack.to_rules()
            for j, r in enumerate(members):
                r.rng["cuda_rng" if device == "cuda" else "torch_rng"] = stack.rngs[j].get_state()
                r.after_epoch(epoch, "all", epoch, {k: v[j] / steps for k, v in sums.items()}, t.seconds, mem.metrics)
        return [r.finish(seed_stack={"seeds": [c.seed for c in cfgs],
                                     "epoch_time": "wall time of the stacked epoch (every seed in the stack)"})
                for r in runs]
