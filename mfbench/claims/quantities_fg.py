"""Quantities of the forward-gradient claims (Ren et al.), for the claims registry loader."""
from __future__ import annotations

import pandas as pd


def grad_cosine(rows: pd.DataFrame, protocol: str) -> pd.Series:
    """Per seed: the mean over training of the fg rule's `grad_cosine` metric, the cosine between
    the forward-gradient estimate and backprop's gradient of the same local loss on the same batch
    (sampled every `cosine_every` steps, averaged per epoch). Higher = lower estimator variance. The
    protocol does not change it: the estimator's quality over the whole run, not at a selected epoch."""
    r = rows[(rows.split == "train") & (rows.metric == "grad_cosine")]
    return r.groupby("seed")["value"].mean().rename("grad_cosine")
