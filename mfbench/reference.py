"""Published numbers, each with its source and a confirmed/secondary flag.

The data is `reference.csv` beside this module (one row per published number);
values keep the unit they were published in.
"""
from __future__ import annotations

import os

import pandas as pd

PATH = os.path.join(os.path.dirname(__file__), "reference.csv")


def load(**where: str) -> pd.DataFrame:
    """Reference rows, filtered by equality on any column (study=..., artefact=...)."""
    df = pd.read_csv(PATH, dtype={"pred_mode": str, "note": str, "arch_detail": str}, keep_default_na=False)
    df["value"] = df["value"].astype(float)
    for k, v in where.items():
        df = df[df[k] == v]
    return df.reset_index(drop=True)


def as_fraction(value: float, unit: str) -> float:
    """Published accuracies in percent -> the fraction the results use."""
    return value / 100.0 if unit == "percent" else value
