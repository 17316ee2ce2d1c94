"""The `tuned` protocol: an equal-budget quasi-random search per rule and cell, chosen on validation.

AlgoPerf's external-tuning style. Each study (one rule on one cell) draws `trials` points of the
declared search space from a scrambled quasi-random sequence (`scipy.stats.qmc`, Halton or Sobol)
seeded by a stable hash of the study's name, so every arm gets the same number of trials over the
same ranges, but its own points: no two arms share a tuned value by construction, and re-planning
the workflow draws the same points. Each trial is one Snakemake job that trains the tuning seeds
(disjoint from the evaluation seeds). `mfbench tune-select` scores a trial by the mean, over the
tuning seeds, of the best validation accuracy of the rule's DECLARED primary prediction mode (never a
maximum over modes, which would favour rules with several), writes the chosen point as a JSON run
spec that `mfbench train --spec-file` applies, and every trial's score to a CSV. The test split is
never read.

Torch-free: the workflow calls `check_tuned` and `trials` while it parses (every job parses).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from typing import Any

from mfbench.config import ConfigError
from mfbench.wfconfig import WorkflowConfigError

# Run keys a search may range over; momentum only where the optimiser has one.
SEARCHABLE = ("lr", "weight_decay", "momentum")
SEQUENCES = ("halton", "sobol")
# Each rule's prediction modes (mfbench.algorithms RULES[...].pred_modes; a test keeps them equal), here
# so that the workflow can reject an unknown primary mode at config load without importing torch.
PRED_MODES = {
    "bp": ("bp",), "bp_ds": ("bp",), "dfa": ("dfa",), "fa": ("fa", "l-fa", "lg-fa"), "ff": ("goodness", "softmax"),
    "fg": ("fg-w", "fg-a", "lg-fg-w", "lg-fg-a"), "lbp": ("l-bp", "lg-bp", "heads-only"), "mf": ("ff", "bp"),
    "mf_joint": ("ff", "bp"), "sff": ("avg", "last"),
}
CELL = ("experiment", "dataset", "arch_detail", "algorithm")  # one study: trials of one rule and cell


class TuningConfigError(WorkflowConfigError):
    pass


def _bad(where: str, msg: str) -> TuningConfigError:
    return TuningConfigError(f"workflow config {where}: {msg}")


def check_tuned(where: str, tuned: dict[str, Any], eval_seeds: list[int], rules: list[str]) -> None:
    """Reject a tuned-protocol section that cannot give a fair search, one line naming the key."""
    if not tuned.get("enabled", True):
        return
    n = tuned.get("trials")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise _bad(f"{where}.trials", f"must be a positive integer (trials per rule and cell), got {n!r}")
    space = tuned.get("search") or {}
    if not space:
        raise _bad(f"{where}.search", f"declare at least one of {', '.join(SEARCHABLE)}")
    for key, dim in space.items():
        k = f"{where}.search.{key}"
        if key not in SEARCHABLE:
            raise _bad(k, f"unknown run key; searchable: {', '.join(SEARCHABLE)}")
        if key == "momentum" and tuned.get("optimizer") != "sgd":
            raise _bad(k, f"optimizer {tuned.get('optimizer')!r} has no momentum; search it with optimizer sgd only")
        lo, hi, scale = dim.get("low"), dim.get("high"), dim.get("scale", "log")
        if scale not in ("log", "linear"):
            raise _bad(f"{k}.scale", f"unknown scale {scale!r}; allowed: log, linear")
        for b, v in (("low", lo), ("high", hi)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise _bad(f"{k}.{b}", f"must be a finite number, got {v!r}")
            if scale == "log" and v <= 0:
                raise _bad(f"{k}.{b}", f"a log-scale bound must be > 0, got {v!r}")
        if not lo < hi:
            raise _bad(k, f"low must be below high, got [{lo!r}, {hi!r}]")
        if key == "momentum" and not (0 <= lo and hi < 1):
            raise _bad(k, f"momentum must lie in [0, 1), got [{lo!r}, {hi!r}]")
        if key == "weight_decay" and lo < 0:
            raise _bad(k, f"weight decay must be >= 0, got low {lo!r}")
    tseeds = tuned.get("select_seeds") or []
    if len(tseeds) < 3:
        raise _bad(f"{where}.select_seeds", f"give at least 3 tuning seeds (a mean over seeds), got {tseeds!r}")
    overlap = sorted(set(tseeds) & set(eval_seeds))
    if overlap:
        raise _bad(f"{where}.select_seeds", f"tuning seeds {overlap} are also evaluation seeds; keep them disjoint")
    primary = tuned.get("primary_mode") or {}
    for rule in rules:
        modes = PRED_MODES.get(rule)
        if rule not in primary:
            raise _bad(f"{where}.primary_mode", f"declare the primary prediction mode of {rule!r}"
                       + (f" (one of {', '.join(modes)})" if modes else ""))
        if modes is not None and primary[rule] not in modes:
            raise _bad(f"{where}.primary_mode.{rule}", f"unknown mode {primary[rule]!r}; allowed: {', '.join(modes)}")


def study_seed(study: str) -> int:
    """A stable 63-bit seed from the study's name (not Python's salted hash())."""
    return int.from_bytes(hashlib.sha256(study.encode()).digest()[:8], "big") >> 1


def trials(study: str, space: dict[str, dict], n: int, sequence: str = "halton") -> list[dict[str, float]]:
    """The study's `n` trial points, in a fixed order (the same on every call and machine)."""
    import warnings

    from scipy.stats import qmc

    if sequence not in SEQUENCES:
        raise ConfigError(f"unknown search sequence {sequence!r}; allowed: {', '.join(SEQUENCES)}")
    keys = sorted(space)
    gen = (qmc.Halton if sequence == "halton" else qmc.Sobol)(d=len(keys), scramble=True, seed=study_seed(study))
    with warnings.catch_warnings():  # Sobol's balance warning for n not a power of 2: the points stay valid
        warnings.simplefilter("ignore")
        u = gen.random(n)
    out = []
    for row in u:
        point = {}
        for k, x in zip(keys, row):
            lo, hi, scale = space[k]["low"], space[k]["high"], space[k].get("scale", "log")
            v = math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo))) if scale == "log" else lo + x * (hi - lo)
            point[k] = float(f"{v:.4g}")  # 4 significant digits: readable specs, far finer than the search resolves
        out.append(point)
    return out


# --- selection ---------------------------------------------------------------------------------
def score_trials(paths: list[str], primary_mode: str | None) -> "pd.DataFrame":  # noqa: F821
    """One row per (trial, tuning seed): the searched values, the best validation accuracy of the
    primary mode over the run's epochs (the epoch early stopping keeps), and whether it diverged.
    A trial is named by its run's directory (`t<i>`)."""
    import pandas as pd

    from mfbench import aggregate, results_io

    aggregate.read(paths, same=CELL, distinct_runs=True)  # every file checked; trials of two rules or cells have no one choice
    rows = []
    for p in paths:
        df, diverged = aggregate.split_diverged(aggregate.read([p]))
        cfg = results_io.read_meta(p, config_keys=("seed", "lr", "weight_decay"))["config"]
        row = {"trial": os.path.basename(os.path.dirname(p)), **{k: cfg.get(k) for k in SEARCHABLE},
               "seed": cfg["seed"], "diverged": bool(len(diverged)), "val_accuracy": math.nan}
        if len(diverged):
            print(aggregate.describe(diverged, "tune-select"), file=sys.stderr)
        else:
            val = df[(df.split == "val") & (df.metric == "accuracy")]
            if val.empty:
                raise ConfigError(f"{p} has no validation accuracy: the tuned protocol needs val_fraction > 0")
            modes = sorted(set(val.pred_mode))
            mode = primary_mode or (modes[0] if len(modes) == 1 else None)
            if mode is None:
                raise ConfigError(f"{p} has prediction modes {modes}: name the rule's primary one (--primary-mode); "
                                  "a maximum over modes would favour rules with several")
            if mode not in modes:
                raise ConfigError(f"--primary-mode {mode!r} is not among {p}'s prediction modes {modes}")
            row["val_accuracy"] = float(val[val.pred_mode == mode].value.max())
        rows.append(row)
    return pd.DataFrame(rows)


def select(paths: list[str], primary_mode: str | None = None, space: dict[str, dict] | None = None) -> dict:
    """The trial with the best mean validation score over its tuning seeds. A trial any seed of which
    diverged scores nothing: a setting that diverges on some seeds is not a safe choice. Ties go to the
    earlier trial. `space`: the declared search space; a run outside it (a stale file from another
    search) is an error, and only its keys are chosen."""
    runs = score_trials(paths, primary_mode)
    keys = sorted(space) if space else [k for k in ("lr", "weight_decay") if runs[k].notna().all()]
    for k in keys if space else []:
        lo, hi = space[k]["low"], space[k]["high"]
        inside = runs[k].between(lo * (1 - 1e-3), hi * (1 + 1e-3))  # the points are rounded to 4 digits
        if not inside.all():
            raise ConfigError(f"trial {runs.trial[~inside].iloc[0]}'s {k} lies outside the search space "
                              f"[{lo:g}, {hi:g}]: a run from another search? delete it and run the workflow again")
    # a trial is its point (the searched values); it is named by its runs' directory (`t<i>`)
    per = runs.groupby(keys, sort=False).agg(
        trial=("trial", "first"), seeds=("seed", "count"), diverged=("diverged", "any"),
        val_mean=("val_accuracy", "mean"), val_std=("val_accuracy", "std")).reset_index()
    dup = per.trial.duplicated(keep=False)  # several points in one directory (hand-made inputs)
    per.loc[dup, "trial"] = [f"{t}#{i}" for i, t in enumerate(per.trial[dup])]
    per = per.set_index("trial")[[*keys, "seeds", "diverged", "val_mean", "val_std"]]
    ok = per[~per.diverged]
    if ok.empty:
        raise ConfigError(f"every one of the {len(per)} trial(s) diverged on some tuning seed: nothing to choose")
    best = ok.val_mean.idxmax()
    per["chosen"] = per.index == best
    choice = {k: float(per.loc[best, k]) for k in keys}
    return {"choice": choice, "trial": best, "val_accuracy": float(per.loc[best, "val_mean"]),
            "trials": per.reset_index(), "runs": runs}


def _cmd(args) -> None:
    from mfbench import files

    primary = args.primary_mode
    space = None
    if args.space:
        try:
            space = json.loads(args.space)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--space is not valid JSON: {e}") from None
    result = select(args.inputs, primary, space)
    files.write_json(result["choice"], args.out)
    if args.report:
        files.write_csv(result["trials"], args.report)
    vals = " ".join(f"{k}={v:g}" for k, v in result["choice"].items())
    n = len(result["trials"])
    print(f"chosen on validation ({primary or 'the only'} prediction mode, mean over tuning seeds): "
          f"{result['trial']} of {n}: {vals} (mean best val accuracy {result['val_accuracy']:.4f})")


def add_command(sub) -> None:
    t = sub.add_parser("tune-select", help="choose one cell's hyperparameters from its search trials, on validation")
    t.add_argument("inputs", nargs="+", help="trial run CSVs of one (dataset, arch, rule) study, <trial>/seed<s>.csv")
    t.add_argument("--primary-mode", default=None,
                   help="the rule's declared primary prediction mode, the only one scored (needed when runs have several)")
    t.add_argument("--space", default=None,
                   help="the declared search space (JSON {key: {low, high, scale}}); runs outside it are an error")
    t.add_argument("--out", required=True, help="JSON run spec with the chosen values")
    t.add_argument("--report", default=None, help="also write every trial's values and score here (CSV)")
    t.set_defaults(func=_cmd)
