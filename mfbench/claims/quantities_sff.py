"""Quantities of the Scalable Forward-Forward claims (registry/scalable_ff.yaml)."""
from __future__ import annotations

import pandas as pd

from mfbench.claims.quantities import quantity


@quantity("bytes")
def held_activation_bytes(rows, protocol):
    """Bytes autograd holds for backward over one training step with every block of the net trained
    (`mfbench sff-bench`, metric saved_tensor_peak_bytes at its largest `depth` = blocks trained), per seed.
    Exact and device-independent: seeds differ only in the weights, so the spread is ~0."""
    h = rows[rows.metric == "saved_tensor_peak_bytes"]
    if h.empty:
        return pd.Series(dtype=float)
    h = h[h.depth.astype(int) == h.depth.astype(int).max()]
    return h.groupby("seed")["value"].max()
