"""Quantities of Mono-Forward v2's claims (arXiv 2501.09238v2; registry/mono_forward.yaml, `mfv2-*`)."""
from __future__ import annotations

import pandas as pd

from mfbench.claims.quantities import one_run_per_seed, quantity
from mfbench.config import ConfigError

# What `mfbench memory-depth` measures of a training step, by device: the allocator's peak (tensors: weights,
# optimizer state, activations, temporaries) on CUDA; on a CPU the bytes autograd holds for backward, exact and
# device independent -- the memory experiment's primary CPU measure (its peak RSS carries torch's fixed footprint,
# hundreds of MB that pull any ratio toward 1, so it is shown in the table but not judged).
ALLOCATOR, HELD = "peak_allocated_bytes", "held_activation_peak_bytes"


def judged_metric(rows: pd.DataFrame) -> str:
    """The measure a side's peak memory is read from: the allocator peak where the runs have one (CUDA)."""
    return ALLOCATOR if (rows.metric == ALLOCATOR).any() else HELD


@quantity("bytes")
def peak_train_memory(rows, protocol):
    """Per seed: peak memory of the measured training steps (`mfbench memory-depth --seeds`, one depth): the
    allocator peak on CUDA, else (CPU) the bytes held for backward; a side never mixes devices."""
    m = rows[rows.metric.isin([ALLOCATOR, HELD])]
    if "status" in m:
        m = m[m.status.astype(str) == "ok"]  # an oom row carries NaN, not a peak
    if m.empty:
        return pd.Series(dtype=float)
    if "device" in m and m.device.nunique() > 1:
        raise ConfigError(f"a peak-memory side mixes devices ({', '.join(sorted(m.device.astype(str).unique()))}): "
                          "their measures differ; select one device")
    m = m[m.metric == judged_metric(m)]
    if m.depth.nunique() > 1:
        raise ConfigError(f"a peak-memory side must select one depth, got {sorted(m.depth.unique())}: add depth "
                          "to the claim's select")
    one_run_per_seed(m)
    return m.groupby("seed")["value"].max()
