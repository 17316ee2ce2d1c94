"""The `tuned` protocol's selection: each rule's lr / weight decay chosen on validation.

`mfbench tune-select` reads the grid runs of ONE cell (dataset, arch, rule), scores each
grid point by its best validation accuracy (the early-stopping epoch; the best prediction
mode), averaged over the tuning seeds, and writes the winner as a JSON run spec that
`mfbench train --spec-file` applies. The test split is never read.
"""
from __future__ import annotations

import sys

from mfbench.config import ConfigError

GRID_KEYS = ["lr", "weight_decay"]
CELL = ("experiment", "dataset", "arch_detail", "algorithm")


def select(paths: list[str]) -> dict:
    import pandas as pd

    from mfbench import aggregate, results_io

    aggregate.read(paths, same=CELL, distinct_runs=True)  # every file checked; grid runs of two rules or cells have no one choice
    scores = []
    for p in paths:
        df, diverged = aggregate.split_diverged(aggregate.read([p]))
        if len(diverged):  # a diverged grid point scores nothing; it cannot be chosen
            print(aggregate.describe(diverged, "tune-select"), file=sys.stderr)
            continue
        val = df[(df.split == "val") & (df.metric == "accuracy")]
        if val.empty:
            raise ConfigError(f"{p} has no validation accuracy: the tuned protocol needs val_fraction > 0")
        cfg = results_io.read_meta(p, config_keys=(*GRID_KEYS, "seed"))["config"]
        scores.append({**{k: cfg[k] for k in GRID_KEYS}, "seed": cfg["seed"], "val": float(val.value.max())})
    if not scores:
        raise ConfigError(f"every one of the {len(paths)} grid run(s) diverged: no lr / weight decay to choose")
    s = pd.DataFrame(scores).groupby(GRID_KEYS, as_index=False)["val"].mean()
    best = s.loc[s.val.idxmax()]  # ties: the first in (lr, weight_decay) order, i.e. the smaller values
    return {"lr": float(best.lr), "weight_decay": float(best.weight_decay), "val_accuracy": float(best.val),
            "grid": s.to_dict(orient="records")}


def _cmd(args) -> None:
    from mfbench import files

    choice = select(args.inputs)
    files.write_json({"lr": choice["lr"], "weight_decay": choice["weight_decay"]}, args.out)
    if args.report:
        files.write_json(choice, args.report)
    print(f"chosen on validation: lr={choice['lr']:g} weight_decay={choice['weight_decay']:g} "
          f"(mean best val accuracy {choice['val_accuracy']:.4f})")


def add_command(sub) -> None:
    t = sub.add_parser("tune-select", help="choose lr / weight decay for one cell from its grid runs, on validation")
    t.add_argument("inputs", nargs="+", help="grid run CSVs of one (dataset, arch, rule) cell")
    t.add_argument("--out", required=True, help="JSON run spec with the chosen lr and weight_decay")
    t.add_argument("--report", default=None, help="also write every grid point's validation score here")
    t.set_defaults(func=_cmd)
