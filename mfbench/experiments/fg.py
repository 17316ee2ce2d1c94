"""Forward gradient with local losses (Ren et al., arXiv 2210.03310): Table 3, the gradient cosine, the speed bench.

- `mfbench fg-table`: test and train error (%) per LocalMixer cell and method (the `pred_mode`
  column: bp, l-bp, lg-bp, fa, l-fa, lg-fa, dfa, fg-w, fg-a, lg-fg-w, lg-fg-a), mean and 95% CI
  over seeds, beside the published Table 3 values.
- `mfbench fg-cosine`: beyond the paper, the cosine between the forward-gradient estimate and
  the true local gradient on the same batch (the rule's `grad_cosine` metric), per epoch.
- `mfbench fg-bench`: time per training step of each rule relative to BP, one process, same
  data, repeats interleaved so load from other processes hits every rule alike.
"""
from __future__ import annotations

import pandas as pd

# torch and the torch-side modules are imported by the speed bench only: the tables run without them.
from mfbench import aggregate, files, reference
from mfbench.config import ConfigError, RunConfig
from mfbench.experiments import table_args

# the paper's row order, then the heads-only control (lbp option frozen: a readout of the untrained network)
ROWS = ["bp", "l-bp", "lg-bp", "fa", "l-fa", "lg-fa", "dfa", "fg-w", "fg-a", "lg-fg-w", "lg-fg-a", "heads-only"]
CELL = ["dataset", "arch", "arch_detail"]
METHOD = ["algorithm", "pred_mode"]


def order(df: pd.DataFrame) -> pd.DataFrame:
    rank = {m: i for i, m in enumerate(ROWS)}
    return df.assign(_r=df.pred_mode.map(lambda m: rank.get(m, len(ROWS)))).sort_values(
        [*CELL, "_r", "pred_mode"]).drop(columns="_r").reset_index(drop=True)


def errors(df: pd.DataFrame, split: str, selection: str) -> pd.DataFrame:
    """Per cell and method: error (%) at the selected epoch, summarised over seeds."""
    fv = aggregate.final_values(df, split=split, metric="accuracy", selection=selection)
    s = aggregate.summarize(fv.assign(value=(1 - fv.value) * 100), CELL + METHOD)
    return s.rename(columns={c: f"{split}_{c}" for c in ("mean", "std", "ci95_low", "ci95_high", "n")})


def table(inputs: list[str], *, selection: str = "last") -> pd.DataFrame:
    """Per cell and method: test and train error over seeds, the published values and the deltas
    beside them. Verdicts on the published claims: the claims ledger."""
    df = aggregate.read(inputs)
    stats = ("mean", "std", "ci95_low", "ci95_high", "n")
    out = errors(df, "test", selection)
    if ((df.split == "train") & (df.metric == "accuracy")).any():  # runs with eval_train
        out = out.merge(errors(df, "train", selection), on=CELL + METHOD, how="left")
    else:
        out[[f"train_{c}" for c in stats]] = float("nan")
    ref = reference.load(artefact="fg")
    out["real"] = out.dataset.str.removeprefix("synthetic-")
    for split in ("test", "train"):
        pub = ref[ref.metric == f"{split}_error"][["dataset", "arch", "arch_detail", "pred_mode", "value"]]
        out = out.merge(pub.rename(columns={"dataset": "real", "value": f"published_{split}"}),
                        on=["real", "arch", "arch_detail", "pred_mode"], how="left")
        out[f"delta_{split}"] = out[f"{split}_mean"] - out[f"published_{split}"]
    out["comparable"] = [("no published value" if pd.isna(p) else aggregate.comparability(d) or "yes")
                         for p, d in zip(out.published_test, out.dataset)]
    meta = ref.drop_duplicates("study").iloc[0] if len(ref) else None
    for c in ("source", "flag", "note"):
        out[c] = meta[c] if meta is not None else ""
    return order(out.drop(columns="real"))


def fg_table(inputs: list[str], out: str, figure: str, *, selection: str = "last") -> pd.DataFrame:
    t = table(inputs, selection=selection)
    files.write_csv(t, out)
    from mfbench.plots.fg import table_figure

    table_figure(t, figure, selection=selection)
    return t


def cosine(inputs: list[str], out: str, figure: str) -> pd.DataFrame:
    """Mean and 95% CI over seeds of the per-epoch gradient cosine, per cell and method."""
    df = aggregate.read(inputs)
    c = df[df.metric == "grad_cosine"]  # pred_mode: the method (fg-w, lg-fg-a, ...) on every row of the run
    if c.empty:
        raise ConfigError(f"no grad_cosine rows in {len(inputs)} run CSV(s): train fg with option cosine_every > 0")
    curves = order(aggregate.summarize(c, CELL + METHOD + ["epoch"]))
    files.write_csv(curves, out)
    from mfbench.plots.fg import cosine_figure

    cosine_figure(curves, figure)
    return curves


# --- the speed bench ------------------------------------------------------------------------
def speed(cfgs: list[RunConfig], *, steps: int, repeats: int, log=print) -> pd.DataFrame:
    """Median seconds per training step of each rule (first: BP) and the ratio to BP, on the
    same `steps` batches of the training split, after one warm-up step each."""
    from mfbench import run
    from mfbench.measure import Timer, sync

    if steps < 1 or repeats < 1:
        raise ConfigError(f"steps and repeats must be >= 1, got {steps}, {repeats}")
    if cfgs[0].algorithm != "bp":
        raise ConfigError(f"--bp-spec must be a bp run, got algorithm {cfgs[0].algorithm!r}")
    for c in cfgs[1:]:
        if (c.dataset, c.arch, run.arch_detail(c), c.batch_size) != (cfgs[0].dataset, cfgs[0].arch,
                                                                      run.arch_detail(cfgs[0]), cfgs[0].batch_size):
            raise ConfigError("every --spec must name the BP spec's dataset, arch (and its size) and batch_size; "
                              f"got {c.dataset} {run.arch_detail(c)} batch {c.batch_size}")
    device = cfgs[0].resolved_device()
    splits = run.load_data(cfgs[0], device)
    rules = [run.build(c, device, splits) for c in cfgs]
    x, y = splits.train
    bs = cfgs[0].batch_size
    reps = -(-steps * bs // len(y))  # small (synthetic) sets are tiled: the time depends on shapes only
    x, y = x.repeat(reps, *([1] * (x.dim() - 1))), y.repeat(reps)
    batches = [(x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]) for i in range(steps)]
    labels = [r.pred_modes[0] for r in rules]
    for r in rules:  # warm-up: allocator, kernels, optimizer state
        r.train()
        r.train_step(*batches[0], "all")
    sync(device)
    times: dict[str, list[float]] = {m: [] for m in labels}
    for _ in range(repeats):
        for m, r in zip(labels, rules):
            with Timer(device) as t:
                for xb, yb in batches:
                    r.train_step(xb, yb, "all")
            times[m].append(t.seconds / steps)
    med = {m: float(pd.Series(v).median()) for m, v in times.items()}
    c0 = cfgs[0]
    rows = [{"dataset": c0.dataset, "arch": c0.arch, "arch_detail": run.arch_detail(c0), "batch_size": bs,
             "device": device, "method": m, "algorithm": c.algorithm, "step_time_s": med[m],
             "ratio_to_bp": med[m] / med["bp"], "steps": steps, "repeats": repeats} for m, c in zip(labels, cfgs)]
    log(f"time per training step relative to BP: {c0.dataset}, {run.arch_detail(c0)} {c0.arch}, batch {bs}, "
        f"{device}, median of {repeats} interleaved repeat(s) of {steps} step(s)")
    for r in rows:
        log(f"  {r['method']:>8}: {r['step_time_s'] * 1000:9.1f} ms/step  {r['ratio_to_bp']:6.2f}x BP")
    return pd.DataFrame(rows)


def bench(bp_spec: str, specs: list[str], steps: int, repeats: int, out: str | None) -> pd.DataFrame:
    cfgs = [RunConfig.from_json(bp_spec, "--bp-spec")] + [RunConfig.from_json(s, "--spec") for s in specs]
    df = speed(cfgs, steps=steps, repeats=repeats)
    if out:
        from mfbench import metadata

        files.write_json(metadata.collect(cfgs[0].resolved_device(), configs=[c.to_dict() for c in cfgs],
                                          steps=steps, repeats=repeats), files.meta_path(out))
        files.write_csv(df, out)
    return df


def add_command(sub) -> None:
    t = sub.add_parser("fg-table", help="Ren et al.'s Table 3: test/train error per LocalMixer cell and method, "
                                        "beside the published values")
    table_args(t, inputs="run CSVs written by `mfbench train` (with --eval-train for train error)")
    t.add_argument("--selection", default="last", choices=["last", "best_val"],
                   help="which epoch counts: the last, or the one with the best validation accuracy")
    t.set_defaults(func=lambda a: fg_table(a.inputs, a.out, a.figure, selection=a.selection))

    c = sub.add_parser("fg-cosine", help="cosine between forward-gradient estimate and true local gradient, per epoch")
    table_args(c,
               inputs="fg run CSVs trained with option cosine_every > 0",
               out="curves CSV (mean and 95%% CI over seeds per epoch)")
    c.set_defaults(func=lambda a: cosine(a.inputs, a.out, a.figure))

    b = sub.add_parser("fg-bench", help="print each rule's time per training step relative to BP (e.g. M/8/16, batch 128)")
    b.add_argument("--bp-spec", required=True, help="JSON run keys of the BP run (dataset, LocalMixer, batch size)")
    b.add_argument("--spec", action="append", default=[], help="JSON run keys of a rule to compare (repeatable)")
    b.add_argument("--steps", type=int, default=10, help="training steps per timed repeat")
    b.add_argument("--repeats", type=int, default=3, help="timed repeats per rule, interleaved (median used)")
    b.add_argument("--out", default=None, help="optional CSV of the measurements (+ .meta.json)")
    b.set_defaults(func=lambda a: bench(a.bp_spec, a.spec, a.steps, a.repeats, a.out))
