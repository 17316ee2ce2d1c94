"""Table 4 (prediction latency) and Table 5 (epoch time from Table 3 runs)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mfbench import cli, files, run
from mfbench.config import ConfigError, RunConfig
from mfbench.experiments import epoch_time, latency


def spec(algorithm: str, **kw) -> str:
    return json.dumps({"algorithm": algorithm, "dataset": "synthetic-mnist", "width": 16, "device": "cpu",
                       "experiment": "table4", **kw})


# --- Table 4 ------------------------------------------------------------------------
def test_measure_rows_per_mode_size_repeat():
    cfgs = [RunConfig.from_json(spec("bp")), RunConfig.from_json(spec("mf"))]
    df = latency.measure(cfgs, [1, 8], repeats=13, warmup=1)  # 13 = 10 rounds of 1 or 2 calls
    assert list(df.columns) == latency.COLUMNS
    cells = df.groupby(["algorithm", "pred_mode", "batch_size"]).size()
    assert dict(cells) == {(a, m, b): 13 for a, m in [("bp", "bp"), ("mf", "bp"), ("mf", "ff")] for b in (1, 8)}
    assert sorted(df[(df.algorithm == "mf") & (df.pred_mode == "ff") & (df.batch_size == 8)].repeat) == list(range(13))
    assert (df.value > 0).all() and set(df.unit) == {"ms"} and set(df.metric) == {"prediction_latency"}
    assert set(df.experiment) == {"table4"} and set(df.arch_detail) == {"2x16"}


def test_measure_rejects_bad_input():
    cfgs = [RunConfig.from_json(spec("bp"))]
    with pytest.raises(ConfigError, match=r"batch size\(s\) \[5000\] exceed the 1000 test examples"):
        latency.measure(cfgs, [1, 5000], repeats=3, warmup=0)
    with pytest.raises(ConfigError, match="repeats must be >= 2"):
        latency.measure(cfgs, [1], repeats=1, warmup=0)
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{bad")
    with pytest.raises(ConfigError, match="unknown algorithm 'nope'"):
        RunConfig.from_json(spec("nope"))


def _fake_latency(values: dict[tuple[str, str, int], list[float]]) -> pd.DataFrame:
    base = {**run.row_base(RunConfig(dataset="synthetic-mnist", width=16)), "epoch": 0, "phase": "", "split": "test",
            "metric": "prediction_latency", "unit": "ms", "device": "cpu (2 threads)"}
    rows = [{**base, "algorithm": a, "pred_mode": m, "batch_size": b, "repeat": i, "value": v}
            for (a, m, b), vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows).reindex(columns=latency.COLUMNS)


def test_table4_median_p90_ratio_and_published():
    vals = np.arange(1, 11, dtype=float)  # median 5.5, p90 (inclusive) 9.1
    df = _fake_latency({("bp", "bp", 1): list(vals), ("mf", "ff", 1): list(vals * 4), ("mf", "bp", 1): list(vals),
                        ("bp", "bp", 100): list(vals * 10), ("mf", "ff", 100): list(vals * 20)})
    t = latency.compare(latency.summarize_cells(df), latency.reference.load(study="mono-forward", artefact="table4"))
    t = t.set_index(["algorithm", "pred_mode", "batch_size"])
    assert t.loc[("bp", "bp", 1), "median_ms"] == pytest.approx(5.5)
    assert t.loc[("bp", "bp", 1), "p90_ms"] == pytest.approx(9.1)
    assert t.loc[("mf", "ff", 1), "ratio_to_bp"] == pytest.approx(4.0)
    assert t.loc[("mf", "ff", 100), "ratio_to_bp"] == pytest.approx(2.0)
    assert t.loc[("bp", "bp", 100), "per_example_us"] == pytest.approx(55.0 * 1e3 / 100)
    # published single-input values sit beside batch-1 cells only
    assert t.loc[("mf", "ff", 1), "published_ms"] == 1.7
    assert t.loc[("mf", "bp", 1), "published_ms"] == 0.3
    assert t.loc[("bp", "bp", 1), "published_ms"] == 0.3
    assert t.loc[("mf", "ff", 1), "published_ratio_to_bp"] == pytest.approx(1.7 / 0.3)
    assert t.loc[("mf", "ff", 1), "flag"] == "secondary"
    assert np.isnan(t.loc[("mf", "ff", 100), "published_ms"])


def test_latency_and_table4_cli(tmp_path):
    raw = tmp_path / "lat" / "synthetic-mnist" / "mlp.csv"
    assert cli.main(["latency", "--spec", spec("bp"), "--spec", spec("mf"), "--batch-sizes", "1", "4",
                     "--repeats", "3", "--warmup", "1", "--out", str(raw)]) == 0
    meta = json.loads(raw.with_suffix(".meta.json").read_text())
    assert meta["repeats"] == 3 and len(meta["configs"]) == 2 and "untrained" in meta["weights"]
    out, fig = tmp_path / "table4.csv", tmp_path / "fig" / "table4.png"
    assert cli.main(["table4", str(raw), "--out", str(out), "--figure", str(fig)]) == 0
    t = pd.read_csv(out)
    assert len(t) == 6 and {"median_ms", "p90_ms", "published_ms", "ratio_to_bp"} <= set(t.columns)
    assert (t.p90_ms >= t.median_ms).all()
    assert fig.stat().st_size > 10_000 and fig.with_suffix(".pdf").exists()


# --- Table 5 ------------------------------------------------------------------------
def _fake_table3(tmp_path, times: dict[str, list[list[float]]], device="cuda (Fake GPU)") -> list[str]:
    """One CSV per (algorithm, seed); times[algorithm][seed] = epoch times, epoch 1 first."""
    paths = []
    for alg, per_seed in times.items():
        for seed, ts in enumerate(per_seed):
            cfg = RunConfig(algorithm=alg, dataset="synthetic-mnist", width=16, seed=seed, experiment="table3")
            rows = [{**run.row_base(cfg), "epoch": e, "phase": "all", "split": "train", "metric": "epoch_time",
                     "value": v, "unit": "s"} for e, v in enumerate(ts, 1)]
            rows += [{**run.row_base(cfg), "epoch": e, "phase": "all", "split": "test", "metric": "accuracy",
                      "value": 0.5, "unit": "fraction", "pred_mode": "bp"} for e in range(1, len(ts) + 1)]
            p = tmp_path / alg / f"seed{seed}.csv"
            files.write_csv(pd.DataFrame(rows).reindex(columns=run.COLUMNS), str(p))
            files.write_json({"device": device.split()[0], "device_name": "Fake GPU"}, run.meta_path(str(p)))
            paths.append(str(p))
    return paths


def test_table5_median_skips_warmup_then_ci_and_ratio(tmp_path):
    # epoch 1 is a slow warm-up; medians of the rest: bp 10, 12, 14; mf 7, 9, 8
    paths = _fake_table3(tmp_path, {"bp": [[99, 10, 9, 11], [99, 12, 12, 13], [99, 14, 15, 13]],
                                    "mf": [[50, 7, 7, 8], [50, 9, 8, 10], [50, 8, 8, 8]]})
    t = epoch_time.table5(epoch_time.read_runs(paths), skip_epochs=1).set_index("algorithm")
    assert t.loc["bp", "mean_s"] == pytest.approx(12.0)
    assert t.loc["mf", "mean_s"] == pytest.approx(8.0)
    assert t.loc["bp", "n"] == 3 and t.loc["mf", "epochs_timed"] == 3
    assert t.loc["bp", "ci95_low_s"] < 12 < t.loc["bp", "ci95_high_s"]
    paired = np.array([7 / 10, 9 / 12, 8 / 14])  # per seed
    assert t.loc["mf", "ratio_to_bp"] == pytest.approx(paired.mean())
    assert (t.loc["mf", "ratio_ci95_low"] + t.loc["mf", "ratio_ci95_high"]) / 2 == pytest.approx(paired.mean())
    assert "MF epoch shorter" in t.loc["mf", "published"] and "verdict" not in t  # verdicts: the claims ledger
    assert t.loc["bp", "ratio_to_bp"] == 1.0
    assert t.loc["mf", "device"] == "cuda (Fake GPU)"
    # without skipping, the warm-up epoch is part of each median
    t0 = epoch_time.table5(epoch_time.read_runs(paths), skip_epochs=0).set_index("algorithm")
    assert t0.loc["bp", "mean_s"] == pytest.approx(np.mean([10.5, 12.5, 14.5]))


def test_table5_ratios(tmp_path):
    slower = _fake_table3(tmp_path / "a", {"bp": [[1, 5, 5], [1, 6, 6], [1, 5, 5]],
                                           "mf": [[1, 8, 8], [1, 9, 9], [1, 8, 8]]})
    assert epoch_time.table5(epoch_time.read_runs(slower)).set_index("algorithm").loc["mf", "ratio_ci95_low"] > 1
    short = _fake_table3(tmp_path / "c", {"bp": [[5], [6]], "mf": [[4], [4]]})  # 1 epoch: nothing to skip
    t = epoch_time.table5(epoch_time.read_runs(short), skip_epochs=1).set_index("algorithm")
    assert t.loc["mf", "mean_s"] == 4 and t.loc["mf", "epochs_timed"] == 1


def test_table5_cli_and_errors(tmp_path, capsys):
    paths = _fake_table3(tmp_path, {"bp": [[3, 2, 2], [3, 2.2, 2.1]], "mf": [[3, 1.5, 1.4], [3, 1.6, 1.5]]})
    out, fig = tmp_path / "t5.csv", tmp_path / "t5.png"
    assert cli.main(["table5", *paths, "--out", str(out), "--figure", str(fig)]) == 0
    assert len(pd.read_csv(out)) == 2 and fig.stat().st_size > 10_000 and fig.with_suffix(".pdf").exists()
    acc_only = tmp_path / "acc.csv"
    df = pd.read_csv(paths[0])
    files.write_csv(df[df.metric == "accuracy"], str(acc_only))
    assert cli.main(["table5", str(acc_only), "--out", str(out), "--figure", str(fig)]) == 2
    assert "no epoch_time rows" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="skip_epochs must be >= 0"):
        epoch_time.per_run(df, -1)
