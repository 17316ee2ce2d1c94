"""Forward-Forward studies beside the Mono-Forward paper.

- `mfbench ff-hinton`: Hinton's MNIST setup (4x2000 ReLU, 60 epochs): final test
  accuracy over seeds per prediction mode beside his published 1.36 % error.
- `mfbench ff-study`: "Forward-Forward: Is it time to bid adieu to backprop?" (FF 2x500
  greedy full batch vs BP 2x500 + head): train and test accuracy, end-to-end time (the
  job's process wall time, from Snakemake's benchmark file `<run>.bench.tsv` beside each
  run CSV), training time (sum of the runner's `epoch_time` rows) and compute time per
  epoch (their median), beside the study's Table 1.
- `mfbench ff-bench`: FF/BP training- and prediction-time ratios at the study's setup,
  measured in one process, both rules on the same data, repeats interleaved so load
  from other processes hits both alike.
"""
from __future__ import annotations

import os
import sys

import pandas as pd

# torch and the torch-side modules are imported by the speed benchmark only: the summaries run without them.
from mfbench import aggregate, files, reference
from mfbench.config import ConfigError, RunConfig
from mfbench.experiments.accuracy import compare
from mfbench.experiments import table_args

CELL = ["dataset", "arch", "algorithm", "pred_mode"]
STUDY = "ff-vs-bp"  # reference.csv study name of Kesanapalli et al.


# --- Hinton's MNIST setup ---------------------------------------------------------------
def hinton(inputs: list[str], out: str, figure: str) -> pd.DataFrame:
    df, diverged = aggregate.read_kept(inputs, "hinton_ff")
    runs = aggregate.final_values(df, split="test", metric="accuracy", selection="last")
    summary = aggregate.note_diverged(aggregate.summarize(runs, [*CELL, "arch_detail"]), diverged, [*CELL, "arch_detail"])
    table = compare(summary, reference.load(artefact="hinton_ff"))
    files.write_csv(table, out)
    from mfbench.plots.ff import hinton_figure

    hinton_figure(df, table, figure)
    return table


# --- the FF-vs-backprop study ---------------------------------------------------------------
def wall_seconds(run_csv: str) -> float:
    """Process wall time of the job that wrote `run_csv` (Snakemake benchmark file), or NaN."""
    tsv = os.path.splitext(run_csv)[0] + ".bench.tsv"
    if not os.path.exists(tsv):
        return float("nan")
    return float(pd.read_csv(tsv, sep="\t")["s"].median())


def run_times(df: pd.DataFrame) -> pd.DataFrame:
    """Per run: epochs, training seconds (sum of epoch_time) and median seconds per epoch."""
    et = df[(df.split == "train") & (df.metric == "epoch_time")]
    g = et.groupby(aggregate.RUN_KEYS, dropna=False)["value"]
    return pd.DataFrame({"epochs": g.size(), "train_time_s": g.sum(), "epoch_time_s": g.median()}).reset_index()


def study_table(inputs: list[str]) -> pd.DataFrame:
    """One row per (dataset, rule, prediction mode): accuracies and times over seeds,
    the study's published train/test accuracy beside them."""
    frames, diverged = [], []
    for p in inputs:
        d, div = aggregate.split_diverged(aggregate.read([p]))
        if len(div):  # left out of every column (accuracy and times); named below
            diverged.append(div)
            continue
        t = run_times(d)
        t["end_to_end_s"] = wall_seconds(p)
        frames.append((d, t))
    diverged = pd.concat(diverged, ignore_index=True) if diverged else pd.DataFrame(columns=aggregate.RUN_KEYS)
    if len(diverged):
        print(aggregate.describe(diverged, "ff_study"), file=sys.stderr)
    if not frames:
        raise ConfigError(f"every one of the {len(inputs)} run(s) diverged: nothing to tabulate")
    df = pd.concat([d for d, _ in frames], ignore_index=True)
    times = pd.concat([t for _, t in frames], ignore_index=True)
    by = [*CELL, "arch_detail", "schedule", "batch_size", "lr"]
    out = None
    for split in ("train", "test"):  # train accuracy exists only for runs with eval_train
        fv = aggregate.final_values(df, split=split, metric="accuracy", selection="last")
        if fv.empty:
            continue
        s = aggregate.summarize(fv, by).rename(columns={"mean": f"{split}_accuracy", "ci95_low": f"{split}_ci95_low",
                                                       "ci95_high": f"{split}_ci95_high", "std": f"{split}_std"})
        out = s if out is None else out.merge(s.drop(columns="n"), on=by, how="outer")
    if out is None:
        raise ConfigError(f"no accuracy rows in {len(inputs)} run CSV(s): nothing to tabulate")
    for split in ("train", "test"):
        for c in ("accuracy", "std", "ci95_low", "ci95_high"):
            if f"{split}_{c}" not in out:
                out[f"{split}_{c}"] = float("nan")
    keys = ["dataset", "arch", "algorithm", "arch_detail", "schedule", "batch_size", "lr"]
    g = times.groupby(keys, dropna=False)
    spread = ["train_time_s", "epoch_time_s", "end_to_end_s"]  # mean and range over seeds (the figure's intervals)
    tsum = pd.concat([g[["epochs", *spread]].mean(), g[spread].min().add_suffix("_min"),
                      g[spread].max().add_suffix("_max")], axis=1)
    out = out.merge(tsum.reset_index(), on=keys, how="left")
    out = aggregate.note_diverged(out, diverged, by, add_missing=False)  # a one-seed cell that diverged: stderr only
    ref = reference.load(study=STUDY, artefact="ff_study")
    rows = []
    for _, m in out.iterrows():
        r = m.to_dict()
        real = m.dataset.removeprefix("synthetic-")
        for split in ("train", "test"):
            pub = ref[(ref.dataset == real) & (ref.algorithm == m.algorithm) & (ref.metric == f"{split}_accuracy")
                      & ((ref.pred_mode == "") | (ref.pred_mode == m.pred_mode))]
            v = reference.as_fraction(pub.value.iloc[0], pub.unit.iloc[0]) if len(pub) else float("nan")
            r[f"published_{split}"] = v
            r[f"delta_{split}"] = m[f"{split}_accuracy"] - v
            r[f"note_{split}"] = aggregate.comparability(m.dataset) if len(pub) else "no published value"
        r["source"] = ref.source.iloc[0] if len(ref) else ""
        rows.append(r)
    table = pd.DataFrame(rows)
    # BP's end-to-end time over FF's, per dataset: the study's "FF about 3.7x faster" claim
    e2e = table.drop_duplicates(["dataset", "algorithm"]).pivot(index="dataset", columns="algorithm",
                                                                 values="end_to_end_s")
    ratio = (e2e["bp"] / e2e["ff"]) if {"bp", "ff"} <= set(e2e.columns) else pd.Series(dtype=float)
    table["speedup_bp_over_ff"] = table.dataset.map(ratio)
    return table


def study(inputs: list[str], speed: str | None, out: str, figure: str) -> pd.DataFrame:
    table = study_table(inputs)
    files.write_csv(table, out)
    from mfbench.plots.ff import study_figure

    study_figure(table, pd.read_csv(speed) if speed else None, figure)
    return table


# --- the speed benchmark ------------------------------------------------------------------------
def _timed_epoch(rule, cfg: RunConfig, phase: str, x, y, gen, device) -> float:
    """One epoch exactly as the runner trains it (its batches, its train_step), in seconds."""
    from mfbench import run
    from mfbench.measure import Timer

    with Timer(device) as t:
        run.train_epoch(rule, x, y, cfg.batch_size, gen, phase)
    return t.seconds


def _timed_predict(rule, mode: str, x, batch_size: int, device) -> float:
    from mfbench.measure import Timer, sync

    rule.eval()
    sync(device)
    with Timer(device) as t:
        for i in range(0, len(x), batch_size):
            rule.predict(x[i:i + batch_size], mode).argmax(-1)
    return t.seconds


def speed(ff_cfg: RunConfig, bp_cfg: RunConfig, *, repeats: int, log=print) -> pd.DataFrame:
    """Median epoch and test-set prediction times of FF and BP, and the ratios, at the given specs.

    Training time of a whole run = sum over phases of (median epoch time x epochs): FF
    greedy runs `epochs` epochs per layer, BP `epochs` epochs once.
    """
    import torch

    from mfbench import run

    if ff_cfg.algorithm != "ff" or bp_cfg.algorithm != "bp":
        raise ConfigError(f"--ff-spec must be an ff run and --bp-spec a bp run, got {ff_cfg.algorithm!r}, "
                          f"{bp_cfg.algorithm!r}")
    if ff_cfg.dataset != bp_cfg.dataset:
        raise ConfigError(f"both specs must name one dataset, got {ff_cfg.dataset!r} and {bp_cfg.dataset!r}")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    device = ff_cfg.resolved_device()
    splits = run.load_data(ff_cfg, device)
    rules = {"ff": run.build(ff_cfg, device, splits), "bp": run.build(bp_cfg, device, splits)}
    cfgs = {"ff": ff_cfg, "bp": bp_cfg}
    gen = torch.Generator(device=device).manual_seed(ff_cfg.seed)
    x, y = splits.train
    units = [(a, ph) for a in ("ff", "bp") for ph in rules[a].phases()]
    for a, ph in units:  # warm-up epoch (allocator, kernels); greedy FF's later layers train on a warm first
        rules[a].begin_phase(ph)
        _timed_epoch(rules[a], cfgs[a], ph, x, y, gen, device)
    times: dict[tuple[str, str], list[float]] = {u: [] for u in units}
    for _ in range(repeats):  # interleaved: a load spike slows one repeat of each, not one rule
        for a, ph in units:
            rules[a].begin_phase(ph)
            times[(a, ph)].append(_timed_epoch(rules[a], cfgs[a], ph, x, y, gen, device))
    xt = splits.test[0]
    preds = {(a, m): [] for a in ("ff", "bp") for m in rules[a].pred_modes}
    for _ in range(max(repeats, 3)):
        for a, m in preds:
            preds[(a, m)].append(_timed_predict(rules[a], m, xt, cfgs[a].eval_batch_size, device))

    med = lambda v: float(pd.Series(v).median())  # noqa: E731
    epoch = {a: sum(med(times[(b, ph)]) for b, ph in units if b == a) / len(rules[a].phases()) for a in rules}
    total = {a: sum(med(times[(b, ph)]) * cfgs[a].epochs for b, ph in units if b == a) for a in rules}
    rows = []

    def add(metric, value, unit, algorithm="", pred_mode=""):
        rows.append({"dataset": ff_cfg.dataset, "device": device, "algorithm": algorithm, "pred_mode": pred_mode,
                     "metric": metric, "value": value, "unit": unit})

    for a in rules:
        add("epoch_time", epoch[a], "s", a)
        add("train_time_estimate", total[a], "s", a)
    for (a, m), v in preds.items():
        add("prediction_time", med(v), "s", a, m)
    add("train_time_ratio_ff_over_bp", total["ff"] / total["bp"], "x")
    add("epoch_time_ratio_ff_over_bp", epoch["ff"] / epoch["bp"], "x")
    for m in rules["ff"].pred_modes:
        add("prediction_time_ratio_ff_over_bp", med(preds[("ff", m)]) / med(preds[("bp", "bp")]), "x", "ff", m)
    out = pd.DataFrame(rows)

    ff_layers = len(rules["ff"].phases())
    log(f"FF vs BP on {ff_cfg.dataset} ({device}), median of {repeats} interleaved repeats:")
    log(f"  FF: {ff_cfg.depth}x{ff_cfg.width}, {ff_cfg.schedule}, batch {min(ff_cfg.batch_size, len(y))} of {len(y)}, "
        f"{ff_cfg.epochs} epochs x {ff_layers} phase(s), {epoch['ff']:.4f} s/epoch -> {total['ff']:.3g} s of training")
    log(f"  BP: {bp_cfg.depth}x{bp_cfg.width} + head, batch {bp_cfg.batch_size}, {bp_cfg.epochs} epochs, "
        f"{epoch['bp']:.4f} s/epoch -> {total['bp']:.3g} s of training")
    log(f"  training time ratio FF/BP (whole run): {total['ff'] / total['bp']:.3f}  "
        f"(published: FF about 3.7x faster, i.e. {1 / 3.7:.3f})")
    log(f"  epoch time ratio FF/BP: {epoch['ff'] / epoch['bp']:.3f}")
    for m in rules["ff"].pred_modes:
        log(f"  prediction time ratio FF[{m}]/BP on the {len(xt)} test examples: "
            f"{med(preds[('ff', m)]) / med(preds[('bp', 'bp')]):.3f}"
            + (f"  ({splits.num_classes} labels: one pass each)" if m == "goodness" else ""))
    return out


def bench(ff_spec: str, bp_spec: str, repeats: int, out: str | None) -> pd.DataFrame:
    from mfbench import metadata

    ff_cfg, bp_cfg = RunConfig.from_json(ff_spec, "--ff-spec"), RunConfig.from_json(bp_spec, "--bp-spec")
    df = speed(ff_cfg, bp_cfg, repeats=repeats)
    if out:
        files.write_json(metadata.collect(ff_cfg.resolved_device(), ff_config=ff_cfg.to_dict(),
                                          bp_config=bp_cfg.to_dict(), repeats=repeats),
                         files.meta_path(out))
        files.write_csv(df, out)
    return df


def add_command(sub) -> None:
    h = sub.add_parser("ff-hinton", help="Hinton's FF MNIST setup: final test accuracy beside the published 1.36%% error")
    table_args(h, out="comparison CSV")
    h.set_defaults(func=lambda a: hinton(a.inputs, a.out, a.figure))

    s = sub.add_parser("ff-study", help="FF vs BP study: accuracies and times beside the published Table 1")
    s.add_argument("inputs", nargs="+", help="run CSVs (a `<run>.bench.tsv` beside each gives its wall time)")
    s.add_argument("--speed", default=None, help="CSV written by `mfbench ff-bench` (drawn in the figure)")
    s.add_argument("--out", required=True, help="table CSV")
    s.add_argument("--figure", required=True, help="figure path (.png; a .pdf is written beside it)")
    s.set_defaults(func=lambda a: study(a.inputs, a.speed, a.out, a.figure))

    b = sub.add_parser("ff-bench", help="print FF/BP training- and prediction-time ratios at the study's setup")
    b.add_argument("--ff-spec", required=True, help="JSON run keys of the FF run (e.g. the study's)")
    b.add_argument("--bp-spec", required=True, help="JSON run keys of the BP run")
    b.add_argument("--repeats", type=int, default=3, help="timed epochs per rule and phase (median used)")
    b.add_argument("--out", default=None, help="optional tidy CSV of the measurements (+ .meta.json)")
    b.set_defaults(func=lambda a: bench(a.ff_spec, a.bp_spec, a.repeats, a.out))
