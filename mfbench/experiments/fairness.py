"""The workflow's plan, read from its dry run (`snakemake -n -p --forceall`), and the fairness invariants.

`mfbench fairness DRYRUN.txt` prints the job count, the training runs and the total planned epochs (what
the tuned protocol's search costs is jobs, not per-job time). `--check-fairness` checks, for every
paired comparison of the claims registry whose sides the plan trains, under each of its protocols,
that both sides' planned runs share what makes a comparison fair: batch size, data split, seeds, the
epoch cap (protocol A, own convergence: per training unit) or the data passes (protocol B, matched
passes), the stopping rule, and under the tuned protocol the trial count, the search space and the
tuning seeds, while no tuned value is shared between the arms. It reads the real plan, so a config
overlay or a spec function that lets one arm drift fails it.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections import Counter
from typing import Any

from mfbench.config import ConfigError, RunConfig

# What both sides of a comparison must share (the claim's own a/b keys excepted: e.g. a schedule).
INVARIANT = ("dataset", "arch", "depth", "width", "channels", "batch_size", "val_fraction", "data_seed",
             "train_subset", "augment", "input_norm", "patience", "eval_every", "precision", "budget",
             "classes", "transfer_train")  # a transfer comparison: the same task and the same layers trained
TUNED_INVARIANT = ("trials", "space", "tuning_seeds", "optimizer", "lr_schedule")
_DEFAULTS = {k: v for k, v in RunConfig().to_dict().items() if k != "data_dir"}


def _command(line: str) -> list[str] | None:
    if not line.startswith("Shell command: mfbench "):
        return None
    cmd = line.removeprefix("Shell command: ").split(" 2>&1 | tee ")[0]
    return shlex.split(cmd)


def _opt(argv: list[str], flag: str, many: bool = False):
    if flag not in argv:
        return None
    i = argv.index(flag) + 1
    if not many:
        return argv[i]
    out = []
    while i < len(argv) and not argv[i].startswith("--"):
        out.append(argv[i])
        i += 1
    return out


def read(text: str) -> dict[str, Any]:
    """Jobs per rule, every planned training run (one per seed, its spec with defaults filled in) and every
    tune-select (its trial runs, primary mode, space)."""
    jobs: Counter = Counter()
    runs: list[dict] = []
    selects: list[dict] = []
    rule = None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            rule = m.group(1)
            jobs[rule] += 1
            continue
        argv = _command(line.strip())
        if argv is None:
            continue
        if argv[1] == "train":
            spec = {**_DEFAULTS, **json.loads(_opt(argv, "--spec") or "{}")}
            out = _opt(argv, "--out")
            seeds = _opt(argv, "--seeds", many=True)
            for s in seeds or [spec["seed"]]:
                phases = spec["depth"] if spec["schedule"] == "greedy" else 1
                # protocol A caps each training unit; protocol B matches passes over the data
                budget = spec["epochs"] if spec["patience"] else spec["epochs"] * phases
                runs.append({**spec, "seed": int(s), "rule": rule, "out": out.replace("{seed}", str(s)),
                             "tuned_from": _opt(argv, "--spec-file"), "phases": phases, "budget": budget,
                             "trial_job": out if seeds else None})
        elif argv[1] == "tune-select":
            i, ins = 2, []
            while i < len(argv) and not argv[i].startswith("--"):
                ins.append(argv[i])
                i += 1
            selects.append({"inputs": ins, "primary_mode": _opt(argv, "--primary-mode"),
                            "space": _opt(argv, "--space"), "out": _opt(argv, "--out")})
    return {"jobs": jobs, "runs": runs, "selects": selects}


def summary(plan: dict) -> str:
    runs = plan["runs"]
    epochs = sum(r["epochs"] * r["phases"] for r in runs)
    train_jobs = sum(n for r, n in plan["jobs"].items() if any(x["rule"] == r for x in runs))
    return (f"{sum(plan['jobs'].values())} jobs ({train_jobs} training jobs, {len(runs)} training runs), "
            f"{epochs} planned epochs at most (epochs x phases; early stopping ends some sooner)")


def _side_runs(runs, experiment, select, side):
    keys = {**select, **{k: v for k, v in side.items() if k not in ("pred_mode", "experiment")}}
    out = []
    for r in runs:
        if r["experiment"] != experiment:
            continue
        ok = True
        for k, v in keys.items():
            allowed = [str(x) for x in (v if isinstance(v, list) else [v])]
            if k == "dataset":
                allowed += [f"synthetic-{x}" for x in allowed]  # smoke: the synthetic twin
            if k in r and str(r[k]) not in allowed:
                ok = False
        if ok:
            out.append(r)
    return out


def _values(runs, key):
    return sorted({json.dumps(r[key], sort_keys=True) for r in runs})


def _study(plan, trial_runs):
    """The trial count, space, tuning seeds and primary mode of the study these trial runs belong to."""
    outs = {r["out"] for r in trial_runs}
    sel = [s for s in plan["selects"] if outs & set(s["inputs"])]
    if len(sel) != 1:
        raise ConfigError(f"{len(sel)} tune-select jobs read the trials of {sorted(outs)[:1]}: expected one")
    return {"trials": len({os.path.dirname(p) for p in sel[0]["inputs"]}),
            "space": sel[0]["space"], "tuning_seeds": sorted({r["seed"] for r in trial_runs}),
            "primary_mode": sel[0]["primary_mode"], "inputs": len(sel[0]["inputs"])}


# Artefacts that re-run a paper's own, published setups side by side (Kesanapalli et al.'s FF vs BP: full-batch
# FF against mini-batch BP, each at its own budget): their comparisons are the paper's, not a fair fight.
OWN_SETUPS = ("ff_study",)


def check(plan: dict, claims) -> tuple[list[str], int]:
    """(violations, comparisons checked): every paired claim, every protocol, sides both planned."""
    bad, checked = [], 0
    runs = plan["runs"]
    for c in claims:
        if c.test != "paired" or c.artefact in OWN_SETUPS:  # cost measurements / comparisons of a paper's own setups
            continue
        for protocol in c.protocols:
            sides = {}
            for name, side in (("a", c.a), ("b", c.b)):
                exp = side.get("experiment", c.artefact)
                sides[name] = _side_runs(runs, f"{exp}_tuned" if protocol == "tuned" else exp, c.select, side)
            if not sides["a"] or not sides["b"]:
                continue  # not in this plan
            checked += 1
            own = (set(c.a) | set(c.b)) - {"algorithm", "pred_mode", "experiment"}
            where = f"{c.id} ({protocol})"
            for k in [*INVARIANT, "seed"]:
                if k in own:
                    continue
                va, vb = _values(sides["a"], k), _values(sides["b"], k)
                if va != vb:
                    bad.append(f"{where}: {k} differs between the sides: a {va} vs b {vb}")
            if protocol != "tuned":
                continue
            trials = {}
            for name, side in (("a", c.a), ("b", c.b)):
                exp = side.get("experiment", c.artefact)
                t = _side_runs(runs, f"{exp}_tune", c.select, side)
                if not t:
                    bad.append(f"{where}: side {name} has tuned runs but no search trials in the plan")
                    break
                trials[name] = t
                st = _study(plan, t)
                for k in TUNED_INVARIANT:
                    trials.setdefault("_" + k, []).append(st[k] if k in st else _values(t, k))
                for k in INVARIANT:  # the trials train as the evaluation runs do
                    if k not in own and _values(t, k) != _values(sides[name], k):
                        bad.append(f"{where}: side {name}'s trials and evaluation runs differ in {k}")
                if not st["primary_mode"]:
                    bad.append(f"{where}: side {name}'s selection names no primary prediction mode")
                for runs_ in (t, sides[name]):  # early stopping watches the mode the rule is scored on
                    if {r["stop_mode"] for r in runs_} != {st["primary_mode"]}:
                        bad.append(f"{where}: side {name}'s runs stop early on {_values(runs_, 'stop_mode')}, "
                                   f"not on its primary mode {st['primary_mode']!r}")
            else:
                for k in TUNED_INVARIANT:
                    va, vb = trials["_" + k]
                    if va != vb:
                        bad.append(f"{where}: tuned protocol's {k} differs between the sides: a {va} vs b {vb}")
                if {r["algorithm"] for r in trials["a"]} != {r["algorithm"] for r in trials["b"]}:
                    for k in ("lr", "weight_decay", "momentum"):
                        shared = set(_values(trials["a"], k)) & set(_values(trials["b"], k))
                        if len(_values(trials["a"], k)) > 1 and shared:
                            bad.append(f"{where}: both arms try {k} {sorted(shared)}: each study draws its own points")
    return bad, checked


def _cmd(args) -> None:
    from mfbench import claims

    with open(args.dryrun) if args.dryrun != "-" else sys.stdin as f:
        plan = read(f.read())
    print(summary(plan))
    if args.check_fairness:
        bad, n = check(plan, claims.load())
        if bad:
            print("\n".join(bad), file=sys.stderr)
            raise SystemExit(1)
        print(f"fairness invariants hold for {n} planned comparison(s)")


def add_command(sub) -> None:
    p = sub.add_parser("fairness", help="the workflow's plan (snakemake -n -p --forceall output): jobs, epochs, fairness")
    p.add_argument("dryrun", help="a file holding the dry run's output, or - for stdin")
    p.add_argument("--check", "--check-fairness", dest="check_fairness", action="store_true",
                   help="check that both sides of every planned comparison share budget, split, stopping and search")
    p.set_defaults(func=_cmd)
