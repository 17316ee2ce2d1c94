"""`mfbench bench` (issue 2): epoch-time ratio and held activations, run tiny on the CPU."""
from __future__ import annotations

import contextlib
import io
import os
import re

import pandas as pd
import pytest
import torch

from mfbench import cli, data
from mfbench.experiments.bench import epoch_data

WIDTH, BATCH, DEPTHS = 32, 64, [2, 4, 8]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.csv"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["bench", "--device", "cpu", "--width", str(WIDTH), "--depth", "2", "--batch-size", str(BATCH),
                       "--n-train", "256", "--repeats", "2", "--depths", *map(str, DEPTHS), "--out", str(out)])
    assert rc == 0
    return buf.getvalue(), pd.read_csv(out, keep_default_na=False), out


def test_prints_table_and_ratios(tiny):
    text, _, _ = tiny
    assert "2x32 MLP, batch 64, synthetic-mnist, 256 training examples per epoch" in text
    assert re.search(r"^\s+bp\s+[\d.]+\s+[\d.]+\s+[\d.]+$", text, re.M)
    assert re.search(r"^\s+mf\s+[\d.]+\s+[\d.]+\s+[\d.]+$", text, re.M)
    ratio = float(re.search(r"MF / BP epoch time: ([\d.]+)", text).group(1))
    assert 0 < ratio < 100
    for d in DEPTHS:  # one row per depth: depth, BP MiB, MF MiB, MF/BP
        assert re.search(rf"^\s+{d}\s+[\d.]+\s+[\d.]+\s+[\d.]+$", text, re.M), d
    assert "MF held bytes across depths [2, 4, 8]: flat" in text
    assert "BP: grows with depth" in text


def test_csv_epoch_times(tiny):
    _, df, out = tiny
    et = df[df.metric == "epoch_time"]
    assert sorted(et.algorithm.unique()) == ["bp", "mf"]
    assert (et.groupby("algorithm").size() == 2).all()  # --repeats timed epochs each; the warm-up is not written
    assert (et.value > 0).all() and set(et.unit) == {"s"}
    assert set(et.depth) == {2} and set(et.batch_size) == {BATCH}
    assert out.with_suffix(".meta.json").exists()


def test_mf_held_bytes_flat_bp_grows_one_activation_per_layer(tiny):
    _, df, _ = tiny
    held = df[df.metric == "saved_tensor_peak_bytes"].pivot(index="depth", columns="algorithm", values="value")
    assert list(held.index) == DEPTHS
    assert held.mf.nunique() == 1  # flat: no activation outlives its layer
    assert (held.mf < held.bp).all()
    # BP keeps each extra layer's float32 output (batch x width) until its backward pass
    per_layer = held.bp.diff().dropna() / pd.Series(DEPTHS, index=DEPTHS).diff().dropna()
    assert (per_layer == BATCH * WIDTH * 4).all()


def test_epoch_data_tiles_small_sets():
    splits = data.load("synthetic-mnist", "unused", "cpu", val_fraction=0.0)
    n = len(splits.train[1])
    x, y = epoch_data(splits, n + 100)
    assert x.shape == (n + 100, 1, 28, 28) and len(y) == n + 100
    assert torch.equal(x[n:], splits.train[0][:100])
    x, y = epoch_data(splits, 0)
    assert len(y) == n


@pytest.mark.parametrize("args, msg", [(["--repeats", "0"], "--repeats must be a positive integer"),
                                       (["--depths", "2", "0"], "--depths must be positive"),
                                       (["--dataset", "nope"], "unknown dataset 'nope'"),
                                       (["--out", "x.txt"], "--out must name a .csv")])
def test_bad_input_one_line(args, msg, capsys):
    assert cli.main(["bench", "--device", "cpu", "--n-train", "64", *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


@pytest.mark.realdata
def test_real_mnist(tmp_path, capsys):
    if not os.environ.get("MFBENCH_DATA"):
        pytest.skip("MFBENCH_DATA unset: no real datasets")
    out = tmp_path / "b.csv"
    assert cli.main(["bench", "--dataset", "mnist", "--device", "cpu", "--width", "32", "--depth", "2",
                     "--batch-size", "128", "--n-train", "512", "--repeats", "1", "--depths", "1", "2",
                     "--out", str(out)]) == 0
    assert " mnist, 512 training examples per epoch, device cpu" in capsys.readouterr().out  # not tiled
    df = pd.read_csv(out)
    assert set(df.dataset) == {"mnist"} and len(df[df.metric == "epoch_time"]) == 2
