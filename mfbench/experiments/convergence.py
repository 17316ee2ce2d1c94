"""Fig. 4 / Fig. 5: accuracy per epoch over seeds (mean, 95% CI) and epochs to a target accuracy.

Pure functions of the run CSVs that `mfbench train` wrote; the figures are drawn from
the summary CSVs these produce (`mfbench.plots.convergence`), never from live runs.
"""
from __future__ import annotations

import math

import pandas as pd

from mfbench.config import ConfigError

# One curve = one setup and prediction mode; its seeds are what the mean and CI run over.
CURVE = ["experiment", "dataset", "arch_detail", "depth", "width", "batch_size", "lr", "algorithm", "schedule",
         "pred_mode"]
SPLITS = ("train", "val", "test")


def _read(paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows of the runs kept, diverged runs left out: named on stderr and in the summaries)."""
    from mfbench import aggregate

    return aggregate.read_kept(paths, "convergence", same=("experiment",), distinct_runs=True)


def accuracy_rows(df: pd.DataFrame, split: str) -> pd.DataFrame:
    """The per-epoch accuracy rows of one split; a clear error when the runs did not evaluate it."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    acc = df[df.metric == "accuracy"]
    cur = acc[acc.split == split]
    if cur.empty:
        have = ", ".join(sorted(acc.split.unique())) or "none"
        hint = {"val": " (runs with val_fraction 0 have no validation split)",
                "train": " (set eval_train: true in the runs)"}.get(split, "")
        raise ConfigError(f"the runs have no {split!r} accuracy{hint}; splits present: {have}")
    dup = cur.duplicated([*CURVE, "seed", "epoch"], keep=False)
    if dup.any():
        # Two runs of one seed in one curve would be averaged as if they were different seeds.
        r = cur[dup].iloc[0]
        which = ", ".join(f"{k}={r[k]}" for k in [*CURVE, "seed"])
        raise ConfigError(f"several runs share one curve and seed ({which}); pass each run once")
    return cur


def curves(df: pd.DataFrame, split: str = "test", diverged: pd.DataFrame | None = None) -> pd.DataFrame:
    """Accuracy (fraction) per epoch: mean, std, n, 95% CI over seeds, per curve and epoch;
    n_diverged / diverged_seeds: the curve's runs left out (`aggregate.split_diverged`)."""
    from mfbench import aggregate

    out = aggregate.summarize(accuracy_rows(df, split), [*CURVE, "epoch"])
    out.insert(len(CURVE), "split", split)
    if diverged is not None:
        out = aggregate.note_diverged(out, diverged, CURVE, add_missing=False)
    return out


def epochs_to_target(df: pd.DataFrame, targets: dict[str, float], split: str = "val") -> pd.DataFrame:
    """Per run and prediction mode: the first evaluated epoch whose `split` accuracy reaches the
    dataset's target (NaN and reached=False when it never does within the run's epochs)."""
    acc = accuracy_rows(df, split)
    missing = sorted(set(acc.dataset) - set(targets))
    if missing:
        raise ConfigError(f"no target accuracy for dataset(s) {missing}; given for: {sorted(targets) or 'none'}")
    for d, t in targets.items():
        if not (isinstance(t, (int, float)) and 0 < t <= 1):
            raise ConfigError(f"target accuracy for {d!r} must be a fraction in (0, 1], got {t!r}")
    rows = []
    for key, g in acc.groupby([*CURVE, "seed"], sort=True, dropna=False):
        rec = dict(zip([*CURVE, "seed"], key))
        target = float(targets[rec["dataset"]])
        hit = g.loc[g.value >= target, "epoch"]
        rows.append({**rec, "split": split, "target": target, "epochs_run": int(g.epoch.max()),
                     "reached": not hit.empty, "epoch_reached": float(hit.min()) if len(hit) else math.nan})
    return pd.DataFrame(rows)


def summarize_targets(per_run: pd.DataFrame, diverged: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per curve: how many runs reached the target, and mean/std/95% CI of the epoch among those
    that did. A run that never reaches it counts in n_runs only, never as its last epoch."""
    from mfbench import aggregate

    by = [*CURVE, "split", "target"]
    stats = aggregate.summarize(per_run, by, value="epoch_reached")
    counts = per_run.groupby(by, sort=True, dropna=False).agg(n_runs=("seed", "size"), n_reached=("reached", "sum"),
                                                epochs_run=("epochs_run", "max")).reset_index()
    out = counts.merge(stats, on=by)
    out = out[[*by, "n_runs", "n_reached", "epochs_run", "mean", "std", "n", "ci95_low", "ci95_high"]]
    return out if diverged is None else aggregate.note_diverged(out, diverged, CURVE, add_missing=False)


def parse_targets(items: list[str] | None) -> dict[str, float]:
    out = {}
    for it in items or []:
        name, sep, val = it.partition("=")
        try:
            out[name] = float(val)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ConfigError(f"--target {it!r} must look like DATASET=FRACTION, e.g. mnist=0.97")
    return out


# --- commands -----------------------------------------------------------------------------
def _fig4_summary(args) -> None:
    from mfbench import files

    df, diverged = _read(args.inputs)
    files.write_csv(curves(df, args.split, diverged), args.out)


def _fig5_summary(args) -> None:
    from mfbench import files

    df, diverged = _read(args.inputs)
    per_run = epochs_to_target(df, parse_targets(args.target), args.target_split)
    files.write_csv(curves(df, args.split, diverged), args.out)
    files.write_csv(per_run, args.target_runs_out)
    files.write_csv(summarize_targets(per_run, diverged), args.target_out)


def _fig4_figure(args) -> None:
    from mfbench.plots import convergence

    convergence.fig4(args.summary, args.out)


def _fig5_figure(args) -> None:
    from mfbench.plots import convergence

    convergence.fig5_curves(args.summary, args.out)
    convergence.fig5_targets(args.targets, args.target_out)


def add_command(sub) -> None:
    a = sub.add_parser("fig4-summary", help="Fig. 4: accuracy per epoch over seeds (mean, std, n, 95%% CI)")
    a.add_argument("inputs", nargs="+", help="run CSVs written by `mfbench train`")
    a.add_argument("--split", default="test", choices=SPLITS, help="split whose accuracy the curves show")
    a.add_argument("--out", required=True, help="summary CSV")
    a.set_defaults(func=_fig4_summary)

    b = sub.add_parser("fig5-summary", help="Fig. 5: accuracy curves per depth and epochs to a target accuracy")
    b.add_argument("inputs", nargs="+", help="run CSVs written by `mfbench train`")
    b.add_argument("--split", default="test", choices=SPLITS, help="split whose accuracy the curves show")
    b.add_argument("--target", action="append", metavar="DATASET=FRACTION",
                   help="target accuracy per dataset, e.g. mnist=0.97 (repeat per dataset)")
    b.add_argument("--target-split", default="val", choices=SPLITS,
                   help="split the target is measured on (val: the test split steers nothing)")
    b.add_argument("--out", required=True, help="curves summary CSV")
    b.add_argument("--target-out", required=True, help="epochs-to-target summary CSV (mean, CI over seeds)")
    b.add_argument("--target-runs-out", required=True, help="epochs-to-target per run CSV")
    b.set_defaults(func=_fig5_summary)

    c = sub.add_parser("fig4-figure", help="draw Fig. 4 from its summary CSV")
    c.add_argument("summary", help="CSV from `mfbench fig4-summary`")
    c.add_argument("--out", required=True, help="figure path (.png; a .pdf is written beside it)")
    c.set_defaults(func=_fig4_figure)

    d = sub.add_parser("fig5-figure", help="draw Fig. 5 (curves per depth, epochs to target) from its summary CSVs")
    d.add_argument("summary", help="curves CSV from `mfbench fig5-summary --out`")
    d.add_argument("targets", nargs="+", help="CSV(s) from `mfbench fig5-summary --target-out`; several (e.g. fig5 "
                                              "and its He-init control fig5_he) share the panels, one line style each")
    d.add_argument("--out", required=True, help="curves figure (.png; a .pdf is written beside it)")
    d.add_argument("--target-out", required=True, help="epochs-to-target figure (.png; a .pdf beside it)")
    d.set_defaults(func=_fig5_figure)
