"""`mfbench ablation-summary`: the ablation ladder (BP -> BP-DS -> MF-joint -> MF) under both cost protocols.

Spyra & Dzwinel's two protocols, on Table 3's MLP cells: A (`ablation_converged`), each rule to its own
convergence (early stopping on validation, a declared patience and epoch cap); B (`ablation_matched`),
a matched number of passes over the training data, last epoch. Per protocol, cell, rule and prediction
mode: test accuracy over seeds (mean, 95% CI; A at the epoch the run stopped, as the ledger reads it),
epochs trained, median seconds per epoch, end-to-end time = epochs x seconds per epoch, energy per run
(NVML, GPU only: absent, never 0, on a CPU) and the allocator peak (CUDA `max_memory_allocated`; on a CPU
the process's peak RSS, named in `memory_metric`). Whether a rung changes the answer is the ledger's
call (paired by seed: mfbench/claims/registry/ablation.yaml), not this table's.
"""
from __future__ import annotations

import sys

import pandas as pd

from mfbench import aggregate, files
from mfbench.config import ConfigError
from mfbench.experiments import table_args

PROTOCOLS = {"ablation_converged": "A: own convergence", "ablation_matched": "B: matched passes"}
LADDER = ["bp", "bp_ds", "mf_joint", "mf"]  # the rungs, in order
GROUP = ["experiment", "dataset", "arch_detail", "algorithm", "pred_mode"]
RUN = [k for k in GROUP if k != "pred_mode"]


def summary(inputs: list[str]) -> pd.DataFrame:
    df, diverged = aggregate.split_diverged(aggregate.read(inputs))
    if len(diverged):  # left out of every column, and said so
        print(aggregate.describe(diverged, "ablation-summary"), file=sys.stderr)
    fv = aggregate.final_values(df, split="test", metric="accuracy", selection="last")
    if fv.empty:
        raise ConfigError(f"no test accuracy in {len(inputs)} run CSV(s): nothing to summarise")
    acc = aggregate.summarize(fv, GROUP)
    train = df[df.split == "train"]
    et = train[train.metric == "epoch_time"].groupby(aggregate.RUN_KEYS, dropna=False)["value"]
    runs = pd.DataFrame({"epochs": et.size(), "epoch_time_s": et.median()})
    runs["end_to_end_s"] = runs.epochs * runs.epoch_time_s  # the anchor's end-to-end cost
    energy = train[train.metric == "energy_joules"].groupby(aggregate.RUN_KEYS, dropna=False)["value"].sum()
    runs["energy_J"] = energy.reindex(runs.index)
    mem_metric = "peak_allocated_bytes" if (train.metric == "peak_allocated_bytes").any() else "peak_rss_bytes"
    peak = train[train.metric == mem_metric].groupby(aggregate.RUN_KEYS, dropna=False)["value"].max()
    runs["peak_memory_bytes"] = peak.reindex(runs.index)
    costs = runs.reset_index().groupby(RUN, dropna=False)[
        ["epochs", "epoch_time_s", "end_to_end_s", "energy_J", "peak_memory_bytes"]].mean().reset_index()
    out = acc.merge(costs, on=RUN, how="left")
    out["memory_metric"] = mem_metric
    out["protocol"] = out.experiment.map(PROTOCOLS).fillna(out.experiment)
    rung = {a: i for i, a in enumerate(LADDER)}
    out["rung"] = out.algorithm.map(rung)
    return out.sort_values(["experiment", "dataset", "rung", "pred_mode"]).reset_index(drop=True)


def _cmd(args) -> None:
    table = summary(args.inputs)
    files.write_csv(table, args.out)
    from mfbench.plots.ablation import ablation_figure

    ablation_figure(table, args.figure)


def add_command(sub) -> None:
    a = sub.add_parser("ablation-summary", help="the ablation ladder BP -> BP-DS -> MF-joint -> MF under both cost "
                                                "protocols: accuracy, epochs, time, energy, memory")
    table_args(a, inputs="run CSVs of the ladder (experiments ablation_converged and ablation_matched)",
               out="summary CSV")
    a.set_defaults(func=_cmd)
