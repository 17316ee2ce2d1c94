"""Table 4: prediction latency of MF (FF-pred, BP-pred) and BP, single input and batched.

`mfbench latency` times one model per run spec (each rule's Table 3 spec for a dataset):
the model is built untrained by `run.build`, because a dense forward pass costs the same
whatever the weights' values, so latency needs no training job. The input is the first
`batch_size` examples of the test split, already on the device (host-to-device copy is
not part of a prediction here). One call = `predict(x, mode).argmax(-1)`, timed by
`measure.time_repeats` (CUDA events on GPU, perf_counter on CPU) after warm-up calls,
in blocks interleaved across cells (see `measure`).

Tidy CSV: one row per timed call, `run.COLUMNS` plus `repeat` and `device`; here
`batch_size` is the prediction batch, not the training batch of the spec.
`mfbench table4` reduces such CSVs to median / p90 per cell beside the paper's values.
"""
from __future__ import annotations

import io
import os

import pandas as pd

# torch and the torch-side modules are imported where latency is measured: `table4` runs without them.
from mfbench import aggregate, files, reference
from mfbench.config import ConfigError, RunConfig
from mfbench.experiments import table_args

COLUMNS = [*files.COLUMNS, "repeat", "device"]
CELL = ["dataset", "arch", "arch_detail", "algorithm", "pred_mode", "batch_size", "device"]
METRIC = "prediction_latency"
ROUNDS = 10  # blocks each cell's repeats are split into, interleaved across cells


def device_label(device: str) -> str:
    import torch

    if torch.device(device).type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n > 1 else ''})"


def measure(cfgs: list[RunConfig], batch_sizes: list[int], *, repeats: int, warmup: int) -> pd.DataFrame:
    from mfbench import data, run
    from mfbench.measure import time_repeats

    if not cfgs:
        raise ConfigError("give at least one --spec (one per rule)")
    if not batch_sizes or any(not isinstance(b, int) or b <= 0 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {batch_sizes}")
    if repeats < 2:
        raise ConfigError(f"repeats must be >= 2 (median and p90 need several calls), got {repeats}")
    if warmup < 0:
        raise ConfigError(f"warmup must be >= 0, got {warmup}")
    cells = []  # (row template, device, call)
    loaded: dict[tuple, data.Splits] = {}
    for cfg in cfgs:
        device = cfg.resolved_device()
        key = (cfg.dataset, cfg.resolved_data_dir(), cfg.data_seed, device)
        if key not in loaded:
            loaded[key] = run.load_data(cfg, device)
        splits = loaded[key]
        xte = splits.test[0]
        too_big = [b for b in batch_sizes if b > len(xte)]
        if too_big:
            raise ConfigError(f"batch size(s) {too_big} exceed the {len(xte)} test examples of {cfg.dataset!r}")
        rule = run.build(cfg, device, splits).eval()
        base = {**run.row_base(cfg), "epoch": 0, "phase": "", "split": "test", "metric": METRIC, "unit": "ms",
                "device": device_label(device)}
        for bs in batch_sizes:
            x = xte[:bs].contiguous()
            for mode in rule.pred_modes:
                cells.append(({**base, "batch_size": bs, "pred_mode": mode}, device,
                              lambda rule=rule, x=x, mode=mode: rule.predict(x, mode).argmax(-1)))
    for _, device, call in cells:
        time_repeats(call, device, warmup=warmup, repeats=0)
    # Rounds: every cell times a block of back-to-back calls per round (one untimed call first
    # re-warms its caches), so slow drift (other load, clocks, heat) spreads over all cells
    # instead of landing on whichever would run last.
    secs: list[list[float]] = [[] for _ in cells]
    rounds = min(ROUNDS, repeats)
    for r in range(rounds):
        n = repeats // rounds + (r < repeats % rounds)
        for i, (_, device, call) in enumerate(cells):
            secs[i] += time_repeats(call, device, warmup=1, repeats=n)
    rows = [{**row, "repeat": i, "value": s * 1e3} for (row, _, _), ss in zip(cells, secs) for i, s in enumerate(ss)]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def latency(specs: list[str], batch_sizes: list[int], out: str, *, repeats: int, warmup: int) -> pd.DataFrame:
    if not out.endswith(".csv"):
        raise ConfigError(f"--out must name a .csv file, got {out!r}")
    from mfbench import metadata

    cfgs = [RunConfig.from_json(s) for s in specs]
    df = measure(cfgs, batch_sizes, repeats=repeats, warmup=warmup)
    device = cfgs[0].resolved_device()
    files.write_json(metadata.collect(device, command="latency", configs=[c.to_dict() for c in cfgs],
                                      batch_sizes=batch_sizes, repeats=repeats, warmup=warmup,
                                      weights="untrained (latency of a dense pass does not depend on weight values)",
                                      output=os.path.basename(out)), files.meta_path(out))
    files.write_csv(df, out)
    return df


# --- Table 4 ------------------------------------------------------------------------
def summarize_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Median / p90 (ms) per cell, per-example time, and the ratio to BP's median."""
    df = df[df.metric == METRIC]
    if df.empty:
        raise ConfigError(f"no {METRIC!r} rows in the input CSVs (were they written by `mfbench latency`?)")
    rows = []
    for key, g in df.groupby(CELL, sort=False):
        s = aggregate.order_stats(g.value)
        cell = dict(zip(CELL, key))
        rows.append({**cell, "n": s["n"], "median_ms": s["median"], "p90_ms": s["p90"], "min_ms": s["min"],
                     "max_ms": s["max"], "per_example_us": s["median"] * 1e3 / cell["batch_size"]})
    t = pd.DataFrame(rows)
    where = ["dataset", "arch", "arch_detail", "batch_size", "device"]
    bp = t[t.algorithm == "bp"][[*where, "median_ms"]].rename(columns={"median_ms": "bp_ms"})
    t = t.merge(bp, on=where, how="left")
    t["ratio_to_bp"] = t.median_ms / t.pop("bp_ms")
    return t


def compare(t: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """Published single-input values beside the batch-1 cells of the same rule and mode.

    Milliseconds depend on the hardware; the published ratio to BP is the number a
    different machine can still be judged against.
    """
    ref = ref[ref.metric == METRIC]
    pub_bp = ref[ref.algorithm == "bp"].value
    pub_bp = float(pub_bp.iloc[0]) if len(pub_bp) else float("nan")
    cols = {"published_ms": float("nan"), "published_ratio_to_bp": float("nan"), "study": "", "source": "",
            "flag": "", "note": ""}
    rows = []
    for _, m in t.iterrows():
        row = {**m.to_dict(), **cols}
        p = ref[(ref.algorithm == m.algorithm) & ((ref.pred_mode == "") | (ref.pred_mode == m.pred_mode))]
        if m.batch_size == 1 and len(p):
            p = p.iloc[0]
            row.update(published_ms=p.value, published_ratio_to_bp=p.value / pub_bp, study=p.study,
                       source=p.source, flag=p.flag, note=p.note)
        rows.append(row)
    return pd.DataFrame(rows)


def table4(inputs: list[str], out: str, figure: str) -> pd.DataFrame:
    table = compare(summarize_cells(aggregate.read(inputs)), reference.load(study="mono-forward", artefact="table4"))
    files.write_csv(table, out)
    from mfbench.plots.timing import latency_figure

    latency_figure(io.StringIO(table.to_csv(index=False)), figure)  # the CSV's text: it is renamed in at the end
    return table


def add_command(sub) -> None:
    p = sub.add_parser("latency", help="Table 4: time predictions of untrained models (one --spec per rule)")
    p.add_argument("--spec", action="append", required=True,
                   help="JSON run spec (keys of `mfbench train`); repeat once per rule, e.g. bp and mf")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 1000],
                   help="prediction batch sizes (1 = single input); at most the test split's size")
    p.add_argument("--repeats", type=int, default=100, help="timed calls per cell")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls before timing")
    p.add_argument("--out", required=True, help="tidy CSV (metadata JSON beside it)")
    p.set_defaults(func=lambda a: latency(a.spec, a.batch_sizes, a.out, repeats=a.repeats, warmup=a.warmup))

    t = sub.add_parser("table4", help="Table 4: median/p90 latency per cell beside the paper's values, + figure")
    table_args(t, inputs="CSVs written by `mfbench latency`")
    t.set_defaults(func=lambda a: table4(a.inputs, a.out, a.figure))
