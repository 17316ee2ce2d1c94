"""Clean result files, made by hand in the runner's format (no training), and the ways they get
damaged: shared by the reader battery (test_readers.py) and its property tests."""
from __future__ import annotations

import json
import os

import pandas as pd

from mfbench.files import COLUMNS

EPOCHS = 3


def run_frame(algorithm: str = "mf", seed: int = 0, *, experiment: str = "table3", lr: float = 1e-3,
              dataset: str = "synthetic-mnist", epochs: int = EPOCHS, diverged: bool = False) -> pd.DataFrame:
    """One run's rows as `mfbench train` writes them: per epoch the training loss and epoch time,
    val and test accuracy per prediction mode; a diverged run has a nan loss and a `diverged` row."""
    base = dict(experiment=experiment, dataset=dataset, arch="mlp", arch_detail="2x16", algorithm=algorithm,
                schedule="simultaneous", depth=2, width=16, batch_size=100, lr=lr, seed=seed, phase="all")
    modes = ["ff", "bp"] if algorithm == "mf" else [""]
    rows = []
    for e in range(1, epochs + 1):
        rows.append({**base, "pred_mode": "", "epoch": e, "split": "train", "metric": "loss",
                     "value": float("nan") if diverged and e == epochs else 1.0 / e, "unit": "nats"})
        rows.append({**base, "pred_mode": "", "epoch": e, "split": "train", "metric": "epoch_time",
                     "value": 0.5 + 0.01 * seed + (0.1 if algorithm == "bp" else 0), "unit": "s"})
        if diverged and e == epochs:
            rows.append({**base, "pred_mode": "", "epoch": e, "split": "train", "metric": "diverged", "value": 1,
                         "unit": "flag"})
            break
        for m in modes:
            for split in ("val", "test"):
                acc = 0.5 + 0.1 * e + 0.01 * seed + (0.02 if m == "bp" else 0) + (0.01 if split == "test" else 0)
                rows.append({**base, "pred_mode": m, "epoch": e, "split": split, "metric": "accuracy",
                             "value": round(acc, 4), "unit": "fraction"})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def write_run(path: str, df: pd.DataFrame, *, meta: dict | None = None) -> str:
    df.to_csv(path, index=False, na_rep="nan")  # as the runner does
    r = df.iloc[0]
    cfg = {"lr": float(r.lr), "weight_decay": 0.0, "seed": int(r.seed), "algorithm": r.algorithm,
           "dataset": r.dataset}
    with open(os.path.splitext(path)[0] + ".meta.json", "w") as f:
        json.dump(meta if meta is not None else {"config": cfg, "device": "cpu", "device_name": "test"}, f)
    return path


def clean_runs(d: str, experiment: str = "table3", algorithms=("bp", "mf"), seeds=(0, 1, 2)) -> list[str]:
    return [write_run(os.path.join(d, f"{a}{s}.csv"), run_frame(a, s, experiment=experiment))
            for a in algorithms for s in seeds]


def grid_runs(d: str, algorithm: str = "mf", lrs=(1e-3, 1e-2), seeds=(0, 1)) -> list[str]:
    """A tuning search of one cell as the workflow lays it out: one trial directory per lr
    (`t<i>/`), one run per tuning seed in it."""
    out = []
    for i, lr in enumerate(lrs):
        os.makedirs(os.path.join(d, f"t{i}"), exist_ok=True)
        for s in seeds:
            df = run_frame(algorithm, s, experiment="table3_tune", lr=lr)
            df.loc[df.metric == "accuracy", "value"] += 0.05 if lr == 1e-2 else 0
            out.append(write_run(os.path.join(d, f"t{i}", f"{algorithm}_lr{lr:g}_s{s}.csv"), df))
    return out


def latency_runs(d: str) -> list[str]:
    """`mfbench latency` CSVs (run columns + repeat, device), one per rule, each with its metadata."""
    out = []
    for alg, modes in (("bp", [""]), ("mf", ["ff", "bp"])):
        base = run_frame(alg, 0).iloc[0].to_dict()
        rows = [{**base, "epoch": 0, "phase": "", "split": "test", "metric": "prediction_latency", "unit": "ms",
                 "pred_mode": m, "batch_size": bs, "device": "cpu", "repeat": r, "value": 0.1 * bs + 0.01 * r}
                for bs in (1, 100) for m in modes for r in range(5)]
        out.append(write_run(os.path.join(d, f"latency_{alg}.csv"),
                             pd.DataFrame(rows).reindex(columns=[*COLUMNS, "repeat", "device"])))
    return out


# --- damage: each takes a clean run CSV's path and damages it in place (or adds a file) ----------------
def text(p: str) -> str:
    return open(p, encoding="utf-8").read()


def put(p: str, s: str | bytes) -> None:
    open(p, "wb").write(s if isinstance(s, bytes) else s.encode())


def empty(p):
    put(p, b"")


def binary(p):
    put(p, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))


def latin1(p):
    put(p, text(p).replace("simultaneous", "simultan\u00e9ous").encode("latin-1"))


def truncated_mid_value(p):
    s = text(p).rstrip("\n")
    start = s.rindex("\n") + 1
    put(p, s[: start + (len(s) - start) // 2])  # cut in the middle of the last row


def truncated_mid_number(p):
    s = text(p).rstrip("\n")
    last = s.rsplit("\n", 1)[1].split(",")
    keep = ",".join(last[:16]) + "," + last[16][:1]  # the value column cut after one character
    put(p, s.rsplit("\n", 1)[0] + "\n" + keep)


def ragged_row(p):
    lines = text(p).splitlines(keepends=True)
    lines[3] = ",".join(lines[3].split(",")[:-2]) + "\n"
    put(p, "".join(lines))


def value_text(p):
    df = pd.read_csv(p, keep_default_na=False, dtype=str)
    df.loc[2, "value"] = "0.9O"
    put(p, df.to_csv(index=False))


def missing_column(p):
    pd.read_csv(p, keep_default_na=False, dtype=str).drop(columns=["value"]).to_csv(p, index=False)


def renamed_columns(p):
    pd.read_csv(p, keep_default_na=False, dtype=str).rename(columns={"metric": "measure"}).to_csv(p, index=False)


def mixed_experiment(p):
    df = pd.read_csv(p, keep_default_na=False, dtype=str)
    other = df.assign(experiment="fig4", seed="7")
    pd.concat([df, other]).to_csv(p, index=False)


def other_experiment(p):
    pd.read_csv(p, keep_default_na=False, dtype=str).assign(experiment="fig4").to_csv(p, index=False)


def duplicated_rows(p):
    s = text(p)
    put(p, s + s.split("\n", 1)[1])  # appended to itself (without a second header)


def inf_epoch_time(p):
    df = pd.read_csv(p, keep_default_na=False, dtype=str)
    df.loc[df.metric == "epoch_time", "value"] = "inf"
    put(p, df.to_csv(index=False))


def header_only(p):
    put(p, text(p).split("\n", 1)[0] + "\n")


def directory(p):
    os.remove(p)
    os.makedirs(p)


def missing(p):
    os.remove(p)


def bom(p):  # a spreadsheet's UTF-8 export: must read as the clean file does
    put(p, "\ufeff" + text(p))


def crlf(p):  # a Windows editor's save: must read as the clean file does
    put(p, text(p).replace("\n", "\r\n"))


# kind -> (damage, a fragment the one line must hold besides the file's name)
BAD_RUN = {
    "empty": (empty, "is empty"),
    "binary": (binary, "is binary"),
    "not-utf8": (latin1, "not UTF-8"),
    "truncated-mid-value": (truncated_mid_value, "truncated"),
    "truncated-mid-number": (truncated_mid_number, "truncated"),
    "ragged-row": (ragged_row, "fields"),
    "value-text": (value_text, "not a number"),
    "missing-column": (missing_column, "missing column"),
    "wrong-columns": (renamed_columns, "missing column"),
    "duplicated-rows": (duplicated_rows, "repeats row"),
    "inf-epoch-time": (inf_epoch_time, "not a finite number"),
    "header-only": (header_only, "no rows"),
    "directory": (directory, "is a directory"),
    "missing": (missing, "no such"),
}
FINE_RUN = {"bom": bom, "crlf": crlf}


def nan_without_marker(p):  # a NaN loss in a run that does not say it diverged
    df = pd.read_csv(p, keep_default_na=False, dtype=str)
    df.loc[df.metric == "loss", "value"] = "nan"
    put(p, df.to_csv(index=False))


BAD_RUN["nan-loss-unmarked"] = (nan_without_marker, "marked diverged")


def inf_latency(p):  # a timing that overflowed: never a value a table may average
    df = pd.read_csv(p, keep_default_na=False, dtype=str)
    df.loc[1, "value"] = "inf"
    put(p, df.to_csv(index=False))


def run_cli(argv: list[str]) -> tuple[int | str, str]:
    """`mfbench ARGV` in-process: (exit status, or "traceback" for an uncaught exception; all it printed)."""
    import contextlib
    import io
    import traceback

    from mfbench.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException:
            traceback.print_exc(file=buf)
            rc = "traceback"
    return rc, buf.getvalue()
