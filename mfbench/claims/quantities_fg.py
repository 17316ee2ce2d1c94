"""Quantities of the forward-gradient claims (Ren et al.), registered beside mfbench.claims.quantities."""
from __future__ import annotations

import pandas as pd

from mfbench.claims.quantities import quantity


@quantity("cosine")
def grad_cosine(rows: pd.DataFrame, protocol: str) -> pd.Series:
    """Per seed: the mean over training of the fg rule's `grad_cosine` metric, the cosine between the
    forward-gradient estimate and backprop's gradient of the same loss on the same batch (sampled every
    `cosine_every` steps, averaged per epoch). Higher = lower estimator variance. Both protocols read
    the whole run: it measures the estimator, not a selected epoch."""
    r = rows[(rows.split == "train") & (rows.metric == "grad_cosine")]
    return r.groupby("seed")["value"].mean()
