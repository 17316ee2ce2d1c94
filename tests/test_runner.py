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


def test_progress_names_the_run_every_epoch_and_long_epochs_report_batches(tmp_path, monkeypatch):
    from mfbench import run

    lines = []
    train(small_cfg(algorithm="mf", epochs=2, experiment="t3", seed=4), str(tmp_path / "a.csv"), log=lines.append)
    epochs = [ln for ln in lines if " epoch " in ln]
    assert [ln.split("]")[0] for ln in epochs] == ["[t3 mf synthetic-mnist seed 4"] * 2  # jobs share a console
    assert "epoch 1/2" in epochs[0] and "epoch 2/2" in epochs[1] and not any("batch" in ln for ln in lines)
    monkeypatch.setattr(run, "PROGRESS_SECONDS", 0.0)  # every batch counts as "a long while"
    lines.clear()
    train(small_cfg(algorithm="mf", epochs=1, train_subset=256, batch_size=64), str(tmp_path / "b.csv"),
          log=lines.append)
    assert [ln.split(": ", 1)[1].split(" (")[0] for ln in lines if "batch" in ln] == ["batch 1/4", "batch 2/4",
                                                                                       "batch 3/4"]


def test_unevaluated_epochs_are_rate_limited(tmp_path):
    lines = []  # greedy FF-style schedule: 2 layers x 6 epochs, evaluated every 3rd and at each layer's end
    train(small_cfg(algorithm="ff", schedule="greedy", epochs=6, eval_every=3), str(tmp_path / "a.csv"),
          log=lines.append)
    shown = [int(ln.split(" epoch ")[1].split("/")[0]) for ln in lines if " epoch " in ln]
    assert shown[:1] == [1] and {3, 6, 9, 12} <= set(shown) and len(shown) < 12


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

