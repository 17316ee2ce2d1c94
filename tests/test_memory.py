"""Memory artefacts (Fig. 1/2 trace, Fig. 3a/3b depth sweep, slopes): CPU, synthetic data, seconds."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import torch

from mfbench import cli, run
from mfbench.config import ConfigError, RunConfig
from mfbench.experiments import memory
from mfbench.plots import memory as plots

N, WIDTH, DEPTHS = 256, 32, [1, 2, 3]


def cfg(**kw) -> RunConfig:
    base = dict(dataset="synthetic-mnist", arch="mlp", width=WIDTH, val_fraction=0.0, train_subset=N, device="cpu",
                experiment="fig3a")
    return RunConfig.from_dict({**base, **kw})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("depth")
    paths = {}
    for alg in ("bp", "mf"):
        paths[alg] = str(d / f"{alg}.csv")
        memory.memory_depth(cfg(algorithm=alg), DEPTHS, paths[alg], full_batch=True, warmup_steps=1, steps=1,
                            log=lambda s: None)
    return paths


def held(path) -> pd.Series:
    df = pd.read_csv(path)
    return df[df.metric == "held_activation_peak_bytes"].set_index("depth").value


def test_depth_sweep_bp_grows_one_activation_per_layer_mf_stays_flat(sweep):
    bp, mf = held(sweep["bp"]), held(sweep["mf"])
    assert list(bp.index) == DEPTHS
    # BP keeps every layer's ReLU output (float32, full batch) until backward: exactly one more per layer.
    assert (np.diff(bp.values) == N * WIDTH * 4).all()
    # MF frees each layer's graph before the next layer runs: the peak does not depend on depth.
    assert mf.nunique() == 1
    assert bp.iloc[0] == mf.iloc[0]  # one layer: both rules hold the same tensors


def test_depth_csv_is_tidy_with_status_and_metadata(sweep):
    df = pd.read_csv(sweep["bp"])
    assert set(run.COLUMNS + ["device", "status"]) <= set(df.columns)
    assert set(df.status) == {"ok"} and set(df.device) == {"cpu"}
    assert set(df.batch_size) == {N}  # full batch = the whole training split
    assert {"held_activation_peak_bytes", "peak_rss_bytes"} <= set(df.metric)
    assert (df[df.metric == "peak_rss_bytes"].value > 0).all()
    meta = json.load(open(run.meta_path(sweep["bp"])))
    assert meta["full_batch"] is True and meta["depths"] == DEPTHS


def test_oom_depth_is_a_row_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = memory.measure_depth

    def flaky(c, *a, **k):
        if c.depth == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(c, *a, **k)

    monkeypatch.setattr(memory, "measure_depth", flaky)
    df = memory.memory_depth(cfg(algorithm="bp"), [1, 2, 3], str(tmp_path / "bp.csv"), full_batch=True,
                             warmup_steps=0, steps=1, log=lambda s: None)
    status = df.groupby("depth").status.first()
    assert status.to_dict() == {1: "ok", 2: "oom", 3: "ok"}
    assert df[df.status == "oom"].value.isna().all()
    sl = memory.slopes(df)
    row = sl[(sl.algorithm == "bp") & (sl.metric == "held_activation_peak_bytes")].iloc[0]
    assert row.n == 2 and row.depths == "1-3"  # the oom depth is left out of the fit


def test_cnn_depth_takes_the_first_channels_and_rejects_too_deep():
    c = cfg(algorithm="mf", arch="cnn", channels=[4, 8, 16], dataset="synthetic-cifar10")
    assert memory.at_depth(c, 2, 32).channels == [4, 8]
    with pytest.raises(ConfigError, match="CNN depth 4"):
        memory.at_depth(c, 4, 32)


def test_depth_per_seed_is_a_fresh_model_each_and_held_bytes_match(tmp_path):
    """`--seeds`: every (seed, depth) its own row set; held bytes are exact, so seeds agree."""
    out = str(tmp_path / "s.csv")
    df = memory.memory_depth(cfg(algorithm="mf"), [2], out, full_batch=False, warmup_steps=1, steps=1, seeds=[3, 5],
                             log=lambda s: None)
    h = df[df.metric == "held_activation_peak_bytes"]
    assert sorted(h.seed) == [3, 5] and h.value.nunique() == 1 and set(h.depth) == {2}
    assert json.load(open(run.meta_path(out)))["seeds"] == [3, 5]
    with pytest.raises(ConfigError, match="--seeds must be non-negative integers"):
        memory.memory_depth(cfg(), [1], out, full_batch=False, warmup_steps=0, steps=1, seeds=[-1])


@pytest.mark.parametrize("argv, message", [
    (["--depths", "0"], "--depths must be positive"),
    (["--depths", "1", "--spec", '{"algorithm": "nope"}'], "unknown algorithm 'nope'"),
    (["--depths", "1", "--spec", "[1]"], "JSON object"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys):
    args = ["memory-depth", "--spec", json.dumps(cfg().to_dict()), "--out", str(tmp_path / "x.csv"), *argv]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "x.csv")


def _line_frame(alg, slope_mb, intercept_mb, noise_mb=0.0, dataset="mnist", metric="peak_allocated_bytes"):
    rng = np.random.default_rng(0)
    depths = np.arange(1, 11)
    vals = (intercept_mb + slope_mb * depths + noise_mb * rng.standard_normal(len(depths))) * 1e6
    return pd.DataFrame({"experiment": "fig3a", "dataset": dataset, "arch": "mlp", "algorithm": alg, "device": "cuda",
                         "metric": metric, "depth": depths, "value": vals, "status": "ok"})


def test_slopes_fit_ratio_and_paper_values_beside():
    df = pd.concat([_line_frame("bp", 204.0, 500.0, noise_mb=2.0), _line_frame("mf", 16.16, 400.0, noise_mb=0.5)])
    sl = memory.slopes(df).set_index("algorithm")
    bp, mf, ratio = sl.loc["bp"], sl.loc["mf"], sl.loc["bp/mf"]
    assert bp.slope == pytest.approx(204.0, abs=1.0) and 0 < bp.stderr < 1.0
    assert bp.ci95_low < bp.slope < bp.ci95_high
    assert (bp.published, mf.published) == (204.0, 16.16)
    assert bp.flag == "secondary" and "Fig. 3a" in bp.source
    assert bp.note == "" and mf.note == ""  # comparable; the claims ledger judges them
    assert ratio.slope == pytest.approx(bp.slope / mf.slope) and ratio.unit == "ratio"
    assert ratio.published == pytest.approx(204.0 / 16.16)  # "MF 12.6x flatter"
    assert ratio.stderr > 0


def test_slopes_judge_only_the_compared_measure_on_real_data():
    df = pd.concat([_line_frame("bp", 300.0, 0, metric="held_activation_peak_bytes"),
                    _line_frame("mf", 0.0, 5.0, metric="held_activation_peak_bytes"),
                    _line_frame("bp", 204.0, 0, dataset="synthetic-mnist")])
    sl = memory.slopes(df)
    held = sl[(sl.metric == "held_activation_peak_bytes")].set_index("algorithm")
    assert held.loc["mf", "slope"] == 0 and held.loc["mf", "stderr"] == 0  # flat: zero error, not NaN
    assert held.loc["bp/mf", "slope"] == math.inf
    assert held.loc["bp", "note"].startswith("not comparable (held_activation_peak_bytes")
    synth = sl[sl.dataset == "synthetic-mnist"].iloc[0]
    assert synth.published == 204.0 and synth.note == "not comparable (synthetic data)"
    cnn = memory.slopes(_line_frame("bp", 10, 0).assign(experiment="fig3b", arch="cnn")).iloc[0]
    assert math.isnan(cnn.published) and cnn.note == "no published value"


def test_trace_samples_every_layer_and_frees_the_graph(tmp_path):
    paths = []
    for alg in ("bp", "mf"):
        paths.append(str(tmp_path / f"{alg}.csv"))
        memory.memory_trace(cfg(algorithm=alg, depth=3, batch_size=128, experiment="fig1_2"), 2, paths[-1],
                            log=lambda s: None)
    from mfbench.plots.memory import read_results

    df = read_results(paths)
    assert set(df.metric) == {"held_activation_bytes", "rss_bytes"} and set(df.step) == {1, 2}
    h = df[df.metric == "held_activation_bytes"]
    for alg, g in h.groupby("algorithm"):
        assert g.event.str.startswith("backward").any() and (g.event == "optimizer step").any()
        assert (g[g.event == "step end"].value == 0).all()  # nothing outlives the step
    # MF: one optimizer step per layer per batch; BP: one per batch.
    steps = h[h.event == "optimizer step"].groupby("algorithm").size()
    assert steps["mf"] == 3 * 2 and steps["bp"] == 2
    assert h[h.algorithm == "bp"].value.max() > h[h.algorithm == "mf"].value.max()
    out = str(tmp_path / "fig1_2.png")
    plots.trace_figure(paths, out)
    assert os.path.getsize(out) > 10_000 and os.path.exists(out[:-4] + ".pdf")


def test_depth_figure_from_csvs(sweep, tmp_path):
    sl = str(tmp_path / "slopes.csv")
    assert cli.main(["memory-slopes", sweep["bp"], sweep["mf"], "--out", sl]) == 0
    out = str(tmp_path / "fig3a.png")
    assert cli.main(["memory-plot-depth", sweep["bp"], sweep["mf"], "--slopes", sl, "--out", out]) == 0
    assert os.path.getsize(out) > 10_000 and os.path.exists(out[:-4] + ".pdf")
    assert cli.main(["memory-plot-depth", sweep["bp"], "--slopes", sl, "--out", str(tmp_path / "x.pdf")]) == 2


@pytest.mark.realdata
def test_real_mnist_bp_held_bytes_grow_by_one_activation(tmp_path):
    if not os.environ.get("MFBENCH_DATA"):
        pytest.skip("MFBENCH_DATA not set")
    c = cfg(algorithm="bp", dataset="mnist", train_subset=1000)
    df = memory.memory_depth(c, [1, 2, 3], str(tmp_path / "bp.csv"), full_batch=True, warmup_steps=0, steps=1,
                             log=lambda s: None)
    h = df[df.metric == "held_activation_peak_bytes"].value.to_numpy()
    assert (np.diff(h) == 1000 * WIDTH * 4).all()
