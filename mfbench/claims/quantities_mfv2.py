"""Quantities of Mono-Forward v2's claims (arXiv 2501.09238v2; registry/mono_forward.yaml, `mfv2-*`)."""
from __future__ import annotations

import pandas as pd

from mfbench.claims.quantities import _one_run_per_seed, quantity
from mfbench.config import ConfigError

# The peak a training step reaches, by device, as `mfbench memory-depth` measures it: the allocator's peak
# (tensors only) on CUDA, the process's peak RSS on a CPU (everything the process holds, torch included).
PEAK_METRICS = ("peak_allocated_bytes", "peak_rss_bytes")


@quantity("bytes")
def peak_train_memory(rows, protocol):
    """Per seed: peak memory over the measured training steps (`mfbench memory-depth --seeds`, one depth):
    peak_allocated_bytes on CUDA, else peak_rss_bytes on a CPU; a side never mixes the two."""
    m = rows[rows.metric.isin(PEAK_METRICS)]
    if "status" in m:
        m = m[m.status.astype(str) == "ok"]  # an oom row carries NaN, not a peak
    if m.empty:
        return pd.Series(dtype=float)
    if m.metric.nunique() > 1:  # CUDA rows carry the allocator peak only; a CPU's only RSS
        raise ConfigError(f"a peak-memory side mixes {' and '.join(sorted(m.metric.unique()))} (CUDA and CPU "
                          "runs): select one device")
    if m.depth.nunique() > 1:
        raise ConfigError(f"a peak-memory side must select one depth, got {sorted(m.depth.unique())}: add depth "
                          "to the claim's select")
    _one_run_per_seed(m)
    return m.groupby("seed")["value"].max()
