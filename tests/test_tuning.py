"""The tuned protocol's parts: early stopping on validation, --spec-file, selection on validation only."""
import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import small_cfg

from mfbench.config import ConfigError
from mfbench.experiments import tuning
from mfbench.run import train

CLI = [sys.executable, "-m", "mfbench.cli"]


def test_early_stopping_ends_the_phase_after_patience_evaluations_without_gain(tmp_path):
    # lr so small the weights do not move: validation accuracy never improves after epoch 1
    df = train(small_cfg(algorithm="bp", epochs=6, lr=1e-12, patience=2), str(tmp_path / "r.csv"), log=lambda s: None)
    assert sorted(df.epoch.unique()) == [1, 2, 3]  # best at 1, then 2 evaluations without gain
    full = train(small_cfg(algorithm="bp", epochs=3, lr=1e-3), str(tmp_path / "f.csv"), log=lambda s: None)
    assert sorted(full.epoch.unique()) == [1, 2, 3]


def test_patience_needs_a_validation_split():
    with pytest.raises(ConfigError, match="val_fraction is 0"):
        small_cfg(patience=2, val_fraction=0.0)


def test_spec_file_overrides_spec_and_flags_override_both(tmp_path):
    choice = tmp_path / "choice.json"
    choice.write_text(json.dumps({"lr": 0.003, "weight_decay": 0.01}))
    spec = json.dumps({"dataset": "synthetic-mnist", "depth": 1, "width": 8, "epochs": 1, "train_subset": 256,
                       "device": "cpu", "lr": 0.1})
    out = tmp_path / "r.csv"
    subprocess.run([*CLI, "train", "--spec", spec, "--spec-file", str(choice), "--weight-decay", "0.02",
                    "--out", str(out)], check=True, capture_output=True)
    cfg = json.loads((tmp_path / "r.meta.json").read_text())["config"]
    assert (cfg["lr"], cfg["weight_decay"]) == (0.003, 0.02)
    bad = subprocess.run([*CLI, "train", "--spec", spec, "--spec-file", str(tmp_path / "missing.json"),
                          "--out", str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--spec-file" in bad.stderr and "Traceback" not in bad.stderr


def _grid_run(tmp_path, lr, wd, seed, val, test):
    d = tmp_path / f"lr{lr}_wd{wd}"
    d.mkdir(exist_ok=True)
    rows = [dict(experiment="t", dataset="d", arch="mlp", arch_detail="", algorithm="bp", schedule="simultaneous",
                 pred_mode="bp", depth=1, width=8, batch_size=4, lr=lr, seed=seed, epoch=e, phase="all", split=s,
                 metric="accuracy", value=v, unit="fraction")
            for e, (vv, tt) in enumerate(zip(val, test), 1) for s, v in (("val", vv), ("test", tt))]
    p = d / f"seed{seed}.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    (d / f"seed{seed}.meta.json").write_text(json.dumps({"config": {"lr": lr, "weight_decay": wd, "seed": seed}}))
    return str(p)


def test_selection_reads_validation_only_and_averages_tuning_seeds(tmp_path):
    paths = [
        _grid_run(tmp_path, 0.001, 0.0, 100, val=[0.80, 0.90], test=[0.99, 0.99]),  # best test, worse val
        _grid_run(tmp_path, 0.001, 0.0, 101, val=[0.80, 0.88], test=[0.99, 0.99]),
        _grid_run(tmp_path, 0.003, 0.01, 100, val=[0.93, 0.91], test=[0.50, 0.50]),  # best val (epoch 1)
        _grid_run(tmp_path, 0.003, 0.01, 101, val=[0.92, 0.80], test=[0.50, 0.50]),
    ]
    choice = tuning.select(paths)
    assert (choice["lr"], choice["weight_decay"]) == (0.003, 0.01)
    assert choice["val_accuracy"] == pytest.approx((0.93 + 0.92) / 2)
