"""Result files: atomic writes (a result exists under its final name complete, or not at
all), the run CSV's columns and where a result's metadata JSON goes. No torch or pandas
here: aggregation jobs import this module too."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any

COLUMNS = ["experiment", "dataset", "arch", "arch_detail", "algorithm", "schedule", "pred_mode", "depth", "width",
           "batch_size", "lr", "seed", "epoch", "phase", "split", "metric", "value", "unit"]


def meta_path(out: str) -> str:
    """The metadata JSON written beside result file `out`."""
    return os.path.splitext(out)[0] + ".meta.json"


@contextmanager
def atomic_path(path: str):
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv(df, path: str) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_json(obj: Any, path: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")


def write_text(text: str, path: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
