"""What a claim measures: pure functions from evidence rows to per-unit values.

Each quantity takes the evidence rows of ONE side of a claim (already filtered by the
claim's `select` and the side's keys) and the protocol, and returns either

- a `pd.Series` indexed by the pairing unit (`seed`, or `repeat` for latency) whose
  `attrs["unit"]` names the unit of the values, or
- a `Fit` (a fitted estimate with its standard error), for quantities that are one
  regression per configuration (memory-vs-depth slopes).

Protocols: `paper` takes the last epoch (fixed budget); `tuned` takes the epoch with the
best validation accuracy (early stopping), so the test split never selects anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from mfbench.config import ConfigError


@dataclass(frozen=True)
class Fit:
    value: float
    stderr: float
    dof: int
    unit: str = ""


QUANTITIES: dict[str, Callable[[pd.DataFrame, str], "pd.Series | Fit"]] = {}


def quantity(unit: str):
    def deco(fn):
        def wrapped(rows: pd.DataFrame, protocol: str):
            out = fn(rows, protocol)
            if isinstance(out, pd.Series):
                out.attrs["unit"] = unit
            return out

        wrapped.__doc__ = fn.__doc__
        wrapped.unit = unit
        QUANTITIES[fn.__name__] = wrapped
        return wrapped

    return deco


def one_run_per_seed(rows: pd.DataFrame) -> None:
    """A side must hold one run per seed, or pairing by seed is meaningless."""
    from mfbench.aggregate import RUN_KEYS

    keys = [k for k in RUN_KEYS if k in rows and k != "seed"]
    per_seed = rows.drop_duplicates(keys + ["seed"]).groupby("seed").size()
    if (per_seed > 1).any():
        seed = int(per_seed[per_seed > 1].index[0])
        raise ConfigError(f"the claim's selection matches {int(per_seed.max())} runs for seed {seed}; "
                          "add keys (e.g. lr, depth, schedule) to its select/a/b so one run per seed remains")


def _selected_accuracy(rows: pd.DataFrame, protocol: str, split: str) -> pd.Series:
    from mfbench.aggregate import final_values

    rows = rows[rows.metric.isin(["accuracy"])]
    if rows.empty:
        return pd.Series(dtype=float)
    one_run_per_seed(rows)
    selection = "best_val" if protocol == "tuned" else "last"
    if selection == "best_val" and not (rows.split == "val").any():
        raise ConfigError("the tuned protocol selects on validation, but these runs have no validation split")
    fv = final_values(rows, split=split, metric="accuracy", selection=selection)
    return fv.groupby("seed")["value"].first()


@quantity("fraction")
def final_accuracy(rows, protocol):
    """Test accuracy at the last epoch (paper) or at the best-validation epoch (tuned)."""
    return _selected_accuracy(rows, protocol, "test")


@quantity("percent")
def final_error(rows, protocol):
    """Test error in percent, at the epoch final_accuracy uses."""
    return 100.0 * (1.0 - _selected_accuracy(rows, protocol, "test"))


@quantity("percent")
def train_error(rows, protocol):
    """Training-split error in percent, at the epoch final_accuracy uses (runs need eval_train)."""
    return 100.0 * (1.0 - _selected_accuracy(rows, protocol, "train"))


@quantity("fraction")
def final_train_accuracy(rows, protocol):
    """Training-split accuracy at the epoch final_accuracy uses (runs need eval_train)."""
    return _selected_accuracy(rows, protocol, "train")


@quantity("fraction")
def mean_test_accuracy(rows, protocol):
    """Area under the test-accuracy curve: the mean over evaluated epochs (Fig. 4's 'convergence')."""
    acc = rows[(rows.metric == "accuracy") & (rows.split == "test")]
    if acc.empty:
        return pd.Series(dtype=float)
    one_run_per_seed(acc)
    return acc.groupby("seed")["value"].mean()


def _epoch_times(rows):
    et = rows[(rows.metric == "epoch_time") & (rows.split == "train")]
    if not et.empty:
        one_run_per_seed(et)
    return et


@quantity("s")
def epoch_time(rows, protocol):
    """Median seconds per training epoch, the first epoch (one-time costs) left out when there are more."""
    et = _epoch_times(rows)
    return et.groupby("seed").apply(lambda g: g.sort_values("epoch").value.iloc[1 if len(g) > 1 else 0:].median(),
                                    include_groups=False) if not et.empty else pd.Series(dtype=float)


@quantity("s")
def train_time(rows, protocol):
    """Seconds of training: the sum of every epoch's time."""
    et = _epoch_times(rows)
    return et.groupby("seed")["value"].sum() if not et.empty else pd.Series(dtype=float)


@quantity("J")
def energy_total(rows, protocol):
    """Joules over the whole run (NVML counter), where the device has one."""
    e = rows[rows.metric == "energy_joules"]
    return e.groupby("seed")["value"].sum() if not e.empty else pd.Series(dtype=float)


@quantity("ms")
def latency_ms(rows, protocol):
    """Prediction latency per timed call; paired by repeat index (cells are timed in interleaved rounds)."""
    lat = rows[rows.metric == "prediction_latency"]
    if lat.empty:
        return pd.Series(dtype=float)
    if lat.drop_duplicates(["algorithm", "pred_mode", "batch_size", "dataset", "arch"]).shape[0] > 1:
        raise ConfigError("a latency side must select one rule, prediction mode, batch size, dataset and arch")
    s = lat.set_index(lat["repeat"].astype(int))["value"].astype(float)
    s.index.name = "repeat"
    return s


@quantity("epochs/layer")
def epochs_to_target_depth_slope(rows, protocol):
    """Per seed: least-squares slope over depth of the epochs needed to reach the validation target
    (Fig. 5). A run that never reaches it counts as its epochs + 1 (censored: the slope is then a lower bound)."""
    r = rows[rows["epoch_reached"].notna() | (rows.get("reached").astype(str) == "False")] \
        if "epoch_reached" in rows else rows.iloc[0:0]
    if r.empty:
        return pd.Series(dtype=float)
    reached = r["reached"].astype(str) == "True"
    epochs = np.where(reached, r["epoch_reached"].astype(float), r["epochs_run"].astype(float) + 1)
    r = r.assign(epochs=epochs, depth=r["depth"].astype(float))

    def slope(g):
        return float(np.polyfit(g.depth, g.epochs, 1)[0]) if g.depth.nunique() > 1 else np.nan

    return r.groupby("seed").apply(slope, include_groups=False).dropna()


@quantity("MB/layer")
def memory_slope(rows, protocol):
    """Fitted peak-memory slope over depth (results/<name>/memory/slopes.csv), the compared measure only."""
    s = rows[rows["slope"].notna()] if "slope" in rows else rows.iloc[0:0]
    if "compared" in s:
        s = s[s["compared"].astype(str) == "True"]
    if s.empty:
        return pd.Series(dtype=float)
    if len(s) > 1:
        raise ConfigError(f"a memory-slope side must select one fit, got {len(s)}")
    row = s.iloc[0]
    return Fit(float(row.slope), float(row.stderr), int(row.n) - 2, "MB/layer")


# The memory a training step holds, per trace sample: the allocator's live bytes where the device has
# one (CUDA: what the paper's Fig. 1/2 plot), else the bytes autograd holds for backward (exact on a CPU,
# where RSS barely moves and says nothing about the rule).
TRACE_METRICS = ("allocated_bytes", "held_activation_bytes")


@quantity("cv")
def memory_trace_cv(rows, protocol):
    """Per seed: coefficient of variation (sd / mean over the trace's samples) of the memory a training
    step holds (Fig. 1/2 trace, `mfbench memory-trace`), after the first step (it allocates the optimizer
    state once). CV rather than peak / mean: it weighs every sample, not the one highest, and is
    scale-free, so a smaller footprint alone does not read as evenness. Samples are taken per event
    (each layer's forward and backward, each optimizer step), so the trace is weighted by events, not
    time. Lower = more even."""
    t = rows[rows["event"].astype(str) != ""] if "event" in rows else rows.iloc[0:0]
    metric = next((m for m in TRACE_METRICS if (t.metric == m).any()), None)
    if metric is None:
        return pd.Series(dtype=float)
    t = t[t.metric == metric]
    one_run_per_seed(t)
    step = pd.to_numeric(t["step"], errors="coerce")
    t = t[step > 1] if step.max() > 1 else t
    g = t.groupby("seed")["value"]
    return (g.std(ddof=0) / g.mean()).replace([np.inf, -np.inf], np.nan).dropna()


def _discover() -> None:
    """Quantities of further systems live in quantities_<system>.py beside this file; importing one
    registers them (as adding a rule is adding a file)."""
    import importlib
    import os
    import pkgutil

    for m in pkgutil.iter_modules([os.path.dirname(__file__)]):
        if m.name.startswith("quantities_"):
            importlib.import_module(f"{__package__}.{m.name}")


_discover()
