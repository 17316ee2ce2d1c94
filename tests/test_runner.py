"""The runner and its CLI: tidy CSV, metadata, determinism, resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import small_cfg

from mfbench.run import COLUMNS, meta_path, train

CLI = [sys.executable, "-m", "mfbench.cli"]


def _quiet(_):
    pass


def test_csv_is_tidy_and_complete(tmp_path):
    out = str(tmp_path / "r.csv")
    df = train(small_cfg(algorithm="mf", epochs=2), out, log=_quiet)
    disk = pd.read_csv(out, keep_default_na=False)
    assert list(disk.columns) == COLUMNS
    acc = disk[disk.metric == "accuracy"]
    assert set(acc.split) == {"val", "test"} and set(acc.pred_mode) == {"ff", "bp"}
    assert len(acc) == 2 * 2 * 2  # epochs x splits x modes
    assert acc.value.between(0, 1).all()
    assert set(disk[disk.split == "train"].metric) >= {"loss", "epoch_time", "peak_rss_bytes"}
    assert sorted(disk.epoch.unique()) == [1, 2]
    meta = json.load(open(meta_path(out)))
    assert meta["seed"] == 0 and meta["config"]["algorithm"] == "mf" and "torch" in meta and "git_sha" in meta
    assert not os.path.exists(out + ".ckpt.pt")
    assert len(df) == len(disk)


def _numbers(path):
    df = pd.read_csv(path, keep_default_na=False)
    return df[~df.metric.isin(["epoch_time", "peak_rss_bytes"])].reset_index(drop=True)


def test_same_seed_same_numbers_on_cpu(tmp_path):
    a, b, c = (str(tmp_path / f"{n}.csv") for n in "abc")
    train(small_cfg(algorithm="bp", epochs=2), a, log=_quiet)
    train(small_cfg(algorithm="bp", epochs=2), b, log=_quiet)
    train(small_cfg(algorithm="bp", epochs=2, seed=1), c, log=_quiet)
    pd.testing.assert_frame_equal(_numbers(a), _numbers(b))
    assert not _numbers(a).value.equals(_numbers(c).value)


def test_greedy_epochs_count_per_layer(tmp_path):
    df = train(small_cfg(algorithm="mf", schedule="greedy", epochs=2, depth=2), str(tmp_path / "g.csv"), log=_quiet)
    assert sorted(df.epoch.unique()) == [1, 2, 3, 4]
    assert df.groupby("epoch").phase.first().tolist() == ["layer0", "layer0", "layer1", "layer1"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_file(tmp_path):
    args = ["train", "--algorithm", "mf", "--dataset", "synthetic-mnist", "--depth", "2", "--width", "64",
            "--epochs", "6", "--batch-size", "32", "--train-subset", "3000", "--device", "cpu"]
    ref = str(tmp_path / "ref.csv")
    subprocess.run(CLI + args + ["--out", ref], check=True, capture_output=True)
    out = str(tmp_path / "run.csv")
    p = subprocess.Popen(CLI + args + ["--out", out], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(out + ".ckpt.pt") and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not os.path.exists(out), "a killed run left a file under the final name"
    r = subprocess.run(CLI + args + ["--out", out], check=True, capture_output=True, text=True)
    assert "resuming" in r.stderr
    pd.testing.assert_frame_equal(_numbers(out), _numbers(ref))


@pytest.mark.parametrize("args,needle", [
    (["--algorithm", "sgd-magic"], "unknown algorithm 'sgd-magic'; allowed: bp"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'; allowed:"),
    (["--arch", "resnet"], "unknown arch 'resnet'; allowed: mlp, cnn"),
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--width", "-5"], "width must be a positive integer, got -5"),
    (["--batch-size", "0"], "batch_size must be a positive integer"),
    (["--option", "m_init=ones"], "m_init='ones' not allowed"),
    (["--spec", "{not json"], "--spec is not valid JSON"),
    (["--spec", '{"epochz": 3}'], "unknown run key(s) ['epochz']"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent"], "missing files: MNIST/raw/train-images-idx3-ubyte"),
])
def test_bad_input_one_clear_message_no_output(tmp_path, monkeypatch, capsys, args, needle):
    from mfbench.cli import main

    monkeypatch.delenv("MFBENCH_DATA", raising=False)
    out = tmp_path / "x.csv"
    assert main(["train", "--device", "cpu", "--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("mfbench: error:")
    assert os.listdir(tmp_path) == []


def test_cli_error_has_no_traceback(tmp_path):
    r = subprocess.run(CLI + ["train", "--epochs", "-1", "--out", str(tmp_path / "x.csv")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "epochs must be a positive integer" in r.stderr

