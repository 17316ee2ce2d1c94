"""Fig. 4 / Fig. 5: summary math, epochs to target (incl. never reached), figures from CSVs."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from mfbench import cli
from mfbench.config import ConfigError
from mfbench.experiments import convergence as conv
from mfbench.run import COLUMNS

T975_DF2 = 4.302652729911275  # Student t 0.975 quantile, 2 degrees of freedom (tables)


def run_rows(*, dataset="mnist", algorithm="mf", seed=0, depth=4, curves=None, experiment="fig4"):
    """Tidy rows as `mfbench train` writes them; curves: {(split, pred_mode): [acc per epoch]}."""
    rows = []
    for (split, mode), accs in curves.items():
        for e, v in enumerate(accs, 1):
            rows.append({"experiment": experiment, "dataset": dataset, "arch": "mlp", "arch_detail": f"{depth}x1000",
                         "algorithm": algorithm, "schedule": "simultaneous", "pred_mode": mode, "depth": depth,
                         "width": 1000, "batch_size": 256, "lr": 0.001, "seed": seed, "epoch": e, "phase": "all",
                         "split": split, "metric": "accuracy", "value": v, "unit": "fraction"})
            if (split, mode) == next(iter(curves)):  # one loss row per epoch, as the runner writes
                rows.append({**rows[-1], "split": "train", "metric": "loss", "value": 1.0 / e, "unit": "nats",
                             "pred_mode": ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_curves_mean_and_ci_from_known_numbers():
    df = pd.concat([run_rows(seed=s, curves={("test", "ff"): [a, a + 0.1], ("val", "ff"): [0.0, 0.0]})
                    for s, a in enumerate([0.5, 0.6, 0.7])])
    out = conv.curves(df, "test")
    assert len(out) == 2 and set(out.split) == {"test"}
    e1 = out[out.epoch == 1].iloc[0]
    half = T975_DF2 * 0.1 / math.sqrt(3)
    assert e1["mean"] == pytest.approx(0.6) and e1["std"] == pytest.approx(0.1) and e1["n"] == 3
    assert (e1.ci95_low, e1.ci95_high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert out[out.epoch == 2].iloc[0]["mean"] == pytest.approx(0.7)


def test_curves_keep_rules_modes_and_depths_apart():
    df = pd.concat([run_rows(algorithm="mf", depth=d, curves={("test", "ff"): [0.9], ("test", "bp"): [0.2]})
                    for d in (1, 3)] + [run_rows(algorithm="bp", curves={("test", "bp"): [0.5]})])
    out = conv.curves(df, "test").set_index(["algorithm", "pred_mode", "depth"])["mean"]
    assert out.to_dict() == {("bp", "bp", 4): 0.5, ("mf", "bp", 1): 0.2, ("mf", "bp", 3): 0.2,
                             ("mf", "ff", 1): 0.9, ("mf", "ff", 3): 0.9}


def test_epochs_to_target_uses_val_and_reports_never_reached():
    val = {0: [0.5, 0.8, 0.9], 1: [0.85, 0.9, 0.95], 2: [0.1, 0.2, 0.3]}
    df = pd.concat([run_rows(seed=s, curves={("val", "ff"): v, ("test", "ff"): [0.99] * 3}) for s, v in val.items()])
    per_run = conv.epochs_to_target(df, {"mnist": 0.8}, "val").set_index("seed")
    assert per_run.reached.to_dict() == {0: True, 1: True, 2: False}
    assert per_run.epoch_reached[0] == 2 and per_run.epoch_reached[1] == 1 and math.isnan(per_run.epoch_reached[2])
    s = conv.summarize_targets(per_run.reset_index()).iloc[0]
    # the never-reached run counts in n_runs only: not averaged in as epoch 3
    assert (s.n_runs, s.n_reached, s.n, s.epochs_run) == (3, 2, 2, 3)
    assert s["mean"] == pytest.approx(1.5)
    half = 12.706204736174707 * math.sqrt(0.5) / math.sqrt(2)  # t(0.975, 1 df) * std / sqrt(n)
    assert s.ci95_high == pytest.approx(1.5 + half)
    # the test split reaches the target at epoch 1 in every run, so this proves it was not used
    assert conv.epochs_to_target(df, {"mnist": 0.8}, "test").epoch_reached.tolist() == [1, 1, 1]


def test_no_run_reaches_target():
    df = pd.concat([run_rows(seed=s, curves={("val", "ff"): [0.1, 0.2]}) for s in (0, 1)])
    s = conv.summarize_targets(conv.epochs_to_target(df, {"mnist": 0.9})).iloc[0]
    assert (s.n_runs, s.n_reached, s.n) == (2, 0, 0) and math.isnan(s["mean"])


def test_bad_input_is_a_config_error():
    df = run_rows(curves={("test", "ff"): [0.5]})
    with pytest.raises(ConfigError, match="no 'val' accuracy.*val_fraction"):
        conv.epochs_to_target(df, {"mnist": 0.5}, "val")
    with pytest.raises(ConfigError, match=r"no target accuracy for dataset\(s\) \['mnist'\]"):
        conv.epochs_to_target(df, {"cifar10": 0.5}, "test")
    with pytest.raises(ConfigError, match="fraction in"):
        conv.epochs_to_target(df, {"mnist": 97}, "test")
    with pytest.raises(ConfigError, match="share one curve and seed"):
        conv.curves(pd.concat([df, df]), "test")
    with pytest.raises(ConfigError, match="DATASET=FRACTION"):
        conv.parse_targets(["mnist:0.9"])
    assert conv.parse_targets(["mnist=0.97", "cifar10=0.5"]) == {"mnist": 0.97, "cifar10": 0.5}


# Validation curves by (rule, mode, deep?) for a 0.65 target: bp shallow reaches it at epoch 3, bp deep
# in seed 2 only (epoch 5), mf/ff at epoch 2, mf/bp shallow at 3 and mf/bp deep never.
_CURVES = {("bp", "bp", False): [0.3, 0.5, 0.7, 0.8, 0.85], ("bp", "bp", True): [0.2, 0.3, 0.4, 0.5, 0.5],
           ("mf", "ff", False): [0.5, 0.7, 0.8, 0.85, 0.9], ("mf", "ff", True): [0.5, 0.7, 0.8, 0.85, 0.9],
           ("mf", "bp", False): [0.4, 0.6, 0.7, 0.8, 0.85], ("mf", "bp", True): [0.1, 0.2, 0.3, 0.4, 0.5]}


def _write_runs(tmp_path, datasets, depths, experiment):
    paths = []
    for d in datasets:
        for depth in depths:
            for seed in (0, 1, 2):
                for alg, modes in (("bp", ["bp"]), ("mf", ["ff", "bp"])):
                    curves = {}
                    for m in modes:
                        val = [v + 0.001 * seed for v in _CURVES[alg, m, depth == 3]]
                        if (alg, m, depth, seed) == ("bp", "bp", 3, 2):
                            val[-1] = 0.7
                        curves[("val", m)] = val
                        curves[("test", m)] = [v - 0.01 for v in val]
                    p = tmp_path / f"{experiment}-{d}-{depth}-{alg}-{seed}.csv"
                    run_rows(dataset=d, algorithm=alg, seed=seed, depth=depth, curves=curves,
                             experiment=experiment).to_csv(p, index=False)
                    paths.append(str(p))
    return paths


def test_cli_summaries_and_figures(tmp_path, monkeypatch):
    from mfbench.plots import convergence as plots

    runs4 = _write_runs(tmp_path, ["mnist", "cifar10"], [4], "fig4")
    s4 = tmp_path / "fig4.csv"
    assert cli.main(["fig4-summary", *runs4, "--out", str(s4)]) == 0
    summary = pd.read_csv(s4)
    assert {"mean", "std", "n", "ci95_low", "ci95_high", "epoch", "algorithm", "pred_mode", "dataset",
            "depth"} <= set(summary.columns)
    assert len(summary) == 2 * 3 * 5 and (summary.n == 3).all()

    runs5 = _write_runs(tmp_path, ["mnist"], [1, 3], "fig5")
    s5, t5, r5 = (tmp_path / f"{n}.csv" for n in ("fig5", "targets", "target_runs"))
    args = ["fig5-summary", *runs5, "--target", "mnist=0.65", "--out", str(s5), "--target-out", str(t5),
            "--target-runs-out", str(r5)]
    assert cli.main(args) == 0
    t = pd.read_csv(t5, dtype={"pred_mode": str}).set_index(["algorithm", "pred_mode", "depth"])
    assert set(t.split) == {"val"} and (t.n_runs == 3).all() and (t.epochs_run == 5).all()
    assert t.n_reached.to_dict() == {("bp", "bp", 1): 3, ("bp", "bp", 3): 1, ("mf", "bp", 1): 3,
                                     ("mf", "bp", 3): 0, ("mf", "ff", 1): 3, ("mf", "ff", 3): 3}
    assert t["mean"].fillna(-1).to_dict() == {("bp", "bp", 1): 3, ("bp", "bp", 3): 5, ("mf", "bp", 1): 3,
                                              ("mf", "bp", 3): -1, ("mf", "ff", 1): 2, ("mf", "ff", 3): 2}
    assert cli.main([a.replace("mnist=", "cifar10=") for a in args]) == 2  # no target for mnist

    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append((fig, path)))
    assert cli.main(["fig4-figure", str(s4), "--out", "f4.png"]) == 0
    assert cli.main(["fig5-figure", str(s5), str(t5), "--out", "f5.png", "--target-out", "f5t.png"]) == 0
    (f4, _), (f5, _), (f5t, _) = drawn
    panels = [ax for ax in f4.axes if ax.get_visible() and ax.lines]
    assert [ax.get_title().split(" ")[0] for ax in panels] == ["mnist", "cifar10"]  # paper order
    assert sorted(ln.get_label() for ln in panels[0].lines) == ["bp", "mf/bp", "mf/ff"]
    assert len(f5.axes) == 3 and all(len(ax.lines) == 2 for ax in f5.axes)  # bp, mf/ff, mf/bp x depths 1, 3
    assert [tick.get_text() for tick in f5t.axes[0].get_yticklabels()][-1] == "never"

    monkeypatch.undo()
    plots.fig4(str(s4), str(tmp_path / "fig4.png"))
    assert (tmp_path / "fig4.png").stat().st_size > 10_000 and (tmp_path / "fig4.pdf").exists()


def test_real_mnist_runs_feed_the_summaries(tmp_path):
    """A tiny real-MNIST Fig. 4 cell through the runner and both summaries (skipped without data)."""
    import os

    if not os.environ.get("MFBENCH_DATA"):
        pytest.skip("MFBENCH_DATA unset: no real datasets on this machine")
    from mfbench.config import RunConfig
    from mfbench.run import train

    paths = []
    for alg in ("bp", "mf"):
        cfg = RunConfig.from_dict({"experiment": "fig4", "algorithm": alg, "dataset": "mnist", "depth": 2, "width": 64,
                                   "epochs": 2, "batch_size": 256, "train_subset": 2000, "device": "cpu"})
        paths.append(str(tmp_path / f"{alg}.csv"))
        train(cfg, paths[-1], log=lambda s: None)
    df, _ = conv._read(paths)
    out = conv.curves(df, "test")
    assert len(out) == 3 * 2 and (out.n == 1).all()  # bp, mf/ff, mf/bp x 2 epochs; one seed: no CI
    assert out[out.pred_mode == "ff"]["mean"].max() > 0.5  # well above chance (0.1) after 2 epochs
    per_run = conv.epochs_to_target(df, {"mnist": 0.5}, "val")
    assert set(per_run.epochs_run) == {2} and per_run.reached.any()
