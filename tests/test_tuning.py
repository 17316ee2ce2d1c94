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


def _trial_run(tmp_path, trial, lr, wd, seed, val, test, modes=None, diverged=False):
    """A fake trial run: `val`/`test` per epoch, plus `modes[m]` for each prediction mode m."""
    modes = modes or {"bp": 0.0}
    d = tmp_path / trial
    d.mkdir(exist_ok=True)
    rows = [dict(experiment="t", dataset="d", arch="mlp", arch_detail="", algorithm="mf", schedule="simultaneous",
                 pred_mode=m, depth=1, width=8, batch_size=4, lr=lr, seed=seed, epoch=e, phase="all", split=s,
                 metric="accuracy", value=v + modes[m], unit="fraction")
            for m in modes
            for e, (vv, tt) in enumerate(zip(val, test), 1) for s, v in (("val", vv), ("test", tt))]
    if diverged:
        rows.append({**rows[0], "metric": "diverged", "value": 1.0, "unit": "flag", "pred_mode": ""})
    p = d / f"seed{seed}.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    (d / f"seed{seed}.meta.json").write_text(json.dumps({"config": {"lr": lr, "weight_decay": wd, "seed": seed}}))
    return str(p)


def test_selection_reads_validation_only_and_averages_tuning_seeds(tmp_path):
    paths = [
        _trial_run(tmp_path, "t0", 0.001, 0.1, 100, val=[0.80, 0.90], test=[0.99, 0.99]),  # best test, worse val
        _trial_run(tmp_path, "t0", 0.001, 0.1, 101, val=[0.80, 0.88], test=[0.99, 0.99]),
        _trial_run(tmp_path, "t1", 0.003, 0.01, 100, val=[0.93, 0.91], test=[0.50, 0.50]),  # best val (epoch 1)
        _trial_run(tmp_path, "t1", 0.003, 0.01, 101, val=[0.92, 0.80], test=[0.50, 0.50]),
    ]
    r = tuning.select(paths)
    assert r["choice"] == {"lr": 0.003, "weight_decay": 0.01} and r["trial"] == "t1"
    assert r["val_accuracy"] == pytest.approx((0.93 + 0.92) / 2)
    assert list(r["trials"].chosen) == [False, True] and list(r["trials"].seeds) == [2, 2]


def test_selection_scores_the_declared_primary_mode_never_the_best_mode(tmp_path):
    # t0 wins on mode `ff` (the primary); t1 would win if the best mode counted (its bp-pred)
    paths = [_trial_run(tmp_path, "t0", 0.001, 0.1, s, val=[0.90], test=[0.5], modes={"ff": 0, "bp": 0})
             for s in (1, 2)]
    paths += [_trial_run(tmp_path, "t1", 0.002, 0.1, s, val=[0.88], test=[0.5], modes={"ff": 0, "bp": 0.05})
              for s in (1, 2)]
    assert tuning.select(paths, "ff")["trial"] == "t0"
    assert tuning.select(paths, "bp")["trial"] == "t1"
    with pytest.raises(ConfigError, match="primary"):  # two modes and none named: no silent maximum
        tuning.select(paths)


def test_a_trial_that_diverged_on_any_seed_is_not_chosen(tmp_path):
    paths = [_trial_run(tmp_path, "t0", 0.01, 0.1, 1, val=[0.99], test=[0.5]),
             _trial_run(tmp_path, "t0", 0.01, 0.1, 2, val=[0.99], test=[0.5], diverged=True),
             _trial_run(tmp_path, "t1", 0.001, 0.1, 1, val=[0.70], test=[0.5]),
             _trial_run(tmp_path, "t1", 0.001, 0.1, 2, val=[0.70], test=[0.5])]
    r = tuning.select(paths)
    assert r["trial"] == "t1" and bool(r["trials"].set_index("trial").diverged["t0"])


def test_selection_rejects_runs_outside_the_declared_space(tmp_path):
    paths = [_trial_run(tmp_path, "t0", 0.5, 0.1, s, val=[0.9], test=[0.5]) for s in (1, 2)]
    space = {"lr": {"low": 1e-4, "high": 1e-2}, "weight_decay": {"low": 1e-5, "high": 1.0}}
    with pytest.raises(ConfigError, match="outside the search space"):
        tuning.select(paths, space=space)


SPACE = {"lr": {"low": 1e-4, "high": 1e-2, "scale": "log"}, "weight_decay": {"low": 1e-5, "high": 1.0, "scale": "log"}}


@pytest.mark.parametrize("sequence", ["halton", "sobol"])
def test_trials_are_stable_inside_the_space_and_differ_between_arms(sequence):
    a = tuning.trials("table3/mnist/mlp/bp", SPACE, 16, sequence)
    assert a == tuning.trials("table3/mnist/mlp/bp", SPACE, 16, sequence)  # stable: a re-plan draws the same
    b = tuning.trials("table3/mnist/mlp/mf", SPACE, 16, sequence)
    for k in SPACE:
        assert all(SPACE[k]["low"] <= p[k] <= SPACE[k]["high"] for p in a + b)
        assert not {p[k] for p in a} & {p[k] for p in b}  # no two arms share a tuned value
    # quasi-random on a log scale: every decade of the lr range holds trials
    import math
    assert {int(math.log10(p["lr"] / 1e-4)) for p in a} == {0, 1}
    assert len({int(math.log10(p["weight_decay"] / 1e-5)) for p in a}) >= 4


def test_study_seed_is_a_stable_hash():
    assert tuning.study_seed("table3/mnist/mlp/bp") == tuning.study_seed("table3/mnist/mlp/bp")
    assert tuning.study_seed("table3/mnist/mlp/bp") != tuning.study_seed("table3/mnist/mlp/mf")
    import hashlib  # fixed across processes and machines (sha256, not Python's salted hash())

    assert tuning.study_seed("x") == int(hashlib.sha256(b"x").hexdigest()[:16], 16) >> 1 == 1637211439935739938


GOOD = {"enabled": True, "optimizer": "adamw", "trials": 4, "search": SPACE, "select_seeds": [100, 101, 102],
        "primary_mode": {"bp": "bp", "mf": "ff"}}


@pytest.mark.parametrize("change, key", [
    ({"trials": 0}, "table3.tuned.trials"),
    ({"search": {"lr": {"low": 0.0, "high": 1e-2}}}, "table3.tuned.search.lr.low"),
    ({"search": {"weight_decay": {"low": -1e-5, "high": 1.0, "scale": "log"}}}, "table3.tuned.search.weight_decay.low"),
    ({"select_seeds": [1, 100, 101]}, "table3.tuned.select_seeds"),
    ({"select_seeds": [100, 101]}, "table3.tuned.select_seeds"),
    ({"primary_mode": {"bp": "bp", "mf": "best"}}, "table3.tuned.primary_mode.mf"),
    ({"primary_mode": {"bp": "bp"}}, "table3.tuned.primary_mode"),
    ({"search": {"momentum": {"low": 0.5, "high": 0.99, "scale": "linear"}}}, "table3.tuned.search.momentum"),
    ({"search": {"batch_size": {"low": 32, "high": 256}}}, "table3.tuned.search.batch_size"),
])
def test_bad_search_config_fails_in_one_line_naming_the_key(change, key):
    with pytest.raises(ConfigError) as e:
        tuning.check_tuned("table3.tuned", {**GOOD, **change}, [0, 1, 2], ["bp", "mf"])
    msg = str(e.value)
    assert msg.startswith(f"workflow config {key}:") and "\n" not in msg
    tuning.check_tuned("table3.tuned", GOOD, [0, 1, 2], ["bp", "mf"])  # the good one passes
    sgd = {**GOOD, "optimizer": "sgd", "search": {**SPACE, "momentum": {"low": 0.5, "high": 0.99, "scale": "linear"}}}
    tuning.check_tuned("table3.tuned", sgd, [0, 1, 2], ["bp", "mf"])


def test_pred_modes_table_matches_the_rules():
    from mfbench.algorithms import RULES

    assert tuning.PRED_MODES == {n: r.pred_modes for n, r in RULES.items()}


def test_lr_schedules_per_epoch():
    from mfbench.run import lr_factor

    assert [lr_factor("constant", e, 4) for e in (1, 4)] == [1.0, 1.0]
    assert [lr_factor("linear", e, 4) for e in (1, 2, 3, 4)] == [1.0, 0.75, 0.5, 0.25]
    assert lr_factor("cosine", 1, 4) == 1.0 and lr_factor("cosine", 3, 4) == pytest.approx(0.5)


def test_linear_schedule_and_momentum_reach_the_optimizer(tmp_path):
    from mfbench import run

    cfg = small_cfg(algorithm="bp", epochs=2, lr=0.1, optimizer="sgd", momentum=0.5, lr_schedule="linear")
    seen = []
    real = run.train_epoch

    def spy(rule, *a, **k):
        seen.append([(g["lr"], g["momentum"]) for o in rule.optimizers for g in o.param_groups])
        return real(rule, *a, **k)

    run.train_epoch = spy
    try:
        train(cfg, str(tmp_path / "r.csv"), log=lambda s: None)
    finally:
        run.train_epoch = real
    assert seen == [[(0.1, 0.5)], [(0.05, 0.5)]]


@pytest.mark.parametrize("stop_mode, epochs", [("", 5), ("bp", 2), ("ff", 5)])
def test_early_stopping_watches_the_declared_mode_only(tmp_path, monkeypatch, stop_mode, epochs):
    from mfbench import run

    calls = {"n": 0}

    def scripted(rule, x, y, batch_size):  # ff improves every evaluation, bp never does
        calls["n"] += 1
        return {"ff": 0.6 + 0.01 * calls["n"], "bp": 0.5}

    monkeypatch.setattr(run, "accuracy", scripted)
    df = train(small_cfg(algorithm="mf", epochs=5, patience=1, stop_mode=stop_mode), str(tmp_path / "r.csv"),
               log=lambda s: None)
    assert df.epoch.max() == epochs


def test_unknown_stop_mode_is_rejected():
    with pytest.raises(ConfigError, match="unknown stop_mode 'best'"):
        small_cfg(algorithm="mf", stop_mode="best")
