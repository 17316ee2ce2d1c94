"""`mfbench controls-summary`: the controls beside the runs they control, one row per setup.

A control differs from its runs only in what its `experiment` label names (a frozen projection,
a schedule under a budget), so the summary groups by that label: final test accuracy over seeds
(mean, 95% CI), epochs trained, training seconds and NVML energy per run where the device has
it. Whether a control changes the answer is the claims ledger's call (paired by seed), not this
table's. Fig. 5's He-init control is summarised by `mfbench fig5-summary` like Fig. 5 itself.
"""
from __future__ import annotations

import pandas as pd

from mfbench import aggregate, files
from mfbench.config import ConfigError
from mfbench.experiments import table_args

GROUP = ["experiment", "dataset", "arch_detail", "algorithm", "schedule", "pred_mode"]


def summary(inputs: list[str]) -> pd.DataFrame:
    from mfbench.experiments.ff import run_times

    df = aggregate.read(inputs)
    fv = aggregate.final_values(df, split="test", metric="accuracy", selection="last")
    if fv.empty:
        raise ConfigError(f"no test accuracy in {len(inputs)} run CSV(s): nothing to summarise")
    out = aggregate.summarize(fv, GROUP)
    per_run = run_times(df)
    energy = df[df.metric == "energy_joules"].groupby(aggregate.RUN_KEYS, dropna=False)["value"].sum()
    per_run = per_run.merge(energy.rename("energy_J").reset_index(), on=aggregate.RUN_KEYS, how="left")
    costs = per_run.groupby([k for k in GROUP if k != "pred_mode"], dropna=False)[
        ["epochs", "train_time_s", "energy_J"]].mean().reset_index()
    return out.merge(costs, on=[k for k in GROUP if k != "pred_mode"], how="left")


def _cmd(args) -> None:
    table = summary(args.inputs)
    files.write_csv(table, args.out)
    from mfbench.plots.controls import controls_figure

    controls_figure(table, args.figure, title=args.title)


def add_command(sub) -> None:
    a = sub.add_parser("controls-summary", help="controls beside the runs they control: accuracy over seeds, "
                                                "epochs, time, energy per experiment label")
    table_args(a, inputs="run CSVs written by `mfbench train` (the controls and their runs)", out="summary CSV")
    a.add_argument("--title", default="Controls", help="figure title")
    a.set_defaults(func=_cmd)
