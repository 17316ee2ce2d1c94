"""Controls the claims need: He init of the layer stack, raw-pixel input, a frozen MF projection."""
import pytest
import torch
from conftest import small_cfg

from mfbench import algorithms, data, models, run
from mfbench.config import ConfigError, RunConfig


def test_he_init_draws_kaiming_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    m = models.build(RunConfig(arch="mlp", depth=3, width=1000, init="he"), (1, 28, 28))
    for b in m.blocks:
        lin = b[-2]
        assert torch.equal(lin.bias, torch.zeros_like(lin.bias))
        expect = (2.0 / lin.in_features) ** 0.5
        assert abs(lin.weight.std().item() / expect - 1) < 0.02
    torch.manual_seed(0)
    d = models.build(RunConfig(arch="mlp", depth=3, width=1000), (1, 28, 28))
    assert d.blocks[1][0].weight.std().item() < 0.7 * (2.0 / 1000) ** 0.5  # PyTorch's default is ~0.58x He
    c = models.build(RunConfig(arch="cnn", channels=[4, 8], init="he"), (3, 8, 8))
    assert torch.equal(c.blocks[1][0].bias, torch.zeros(8))


@pytest.mark.parametrize("algorithm", ["bp", "mf"])
def test_he_init_changes_the_stack_only_not_the_heads(algorithm):
    splits = data.load("synthetic-mnist", "unused", train_subset=64)
    rules = {i: run.build(small_cfg(algorithm=algorithm, init=i), "cpu", splits) for i in ("default", "he")}
    heads = {i: [p for n, p in r.named_parameters() if not n.startswith("model.")] for i, r in rules.items()}
    assert heads["he"] and all(torch.equal(a, b) for a, b in zip(heads["default"], heads["he"]))
    assert not torch.equal(rules["he"].model.blocks[0][1].weight, rules["default"].model.blocks[0][1].weight)


def test_input_norm_none_keeps_raw_pixels():
    std = data.load("synthetic-mnist", "unused", train_subset=500)
    raw = data.load("synthetic-mnist", "unused", train_subset=500, input_norm="none")
    assert 0 <= raw.train[0].min() and raw.train[0].max() <= 1
    assert abs(std.train[0].mean().item()) < 1e-3 and raw.train[0].mean() > 0.1
    torch.testing.assert_close((raw.test[0] - raw.train[0].mean()) / raw.train[0].std(), std.test[0],
                               atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="input_norm"):
        data.load("synthetic-mnist", "unused", input_norm="minmax")


@pytest.mark.parametrize("key,value", [("init", "xavier"), ("input_norm", "minmax")])
def test_bad_run_keys_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"{key} {value!r}; allowed"):
        RunConfig.from_dict({key: value})


def _mf(**opts):
    torch.manual_seed(0)
    cfg = small_cfg(algorithm="mf", options=opts)
    return algorithms.build(models.mlp((1, 28, 28), 2, 32), 10, cfg)


def test_frozen_projection_stays_at_init_while_the_layers_learn():
    frozen, learned = _mf(learn_projection=False, input_projection=True), _mf(input_projection=True)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    m0 = [p.clone() for p in frozen.projections.parameters()]
    w0 = frozen.model.blocks[1][0].weight.clone()
    losses = [frozen.train_step(x, y, "all")["loss_layer1"].item() for _ in range(20)]
    for _ in range(2):
        learned.train_step(x, y, "all")
    assert all(torch.equal(a, b) for a, b in zip(m0, frozen.projections.parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(m0, learned.projections.parameters()))
    assert not torch.equal(w0, frozen.model.blocks[1][0].weight)
    assert losses[-1] < losses[0] - 0.05  # W_i still learns through the fixed M_i (measured 2.30 -> 2.21)
    assert "loss_input" not in frozen.train_step(x, y, "all")  # a frozen M_0 has nothing to train


def test_frozen_zero_projection_is_refused():
    with pytest.raises(ConfigError, match="learn_projection"):
        _mf(learn_projection=False, m_init="zeros")


def test_fig5_he_figure_sets_default_and_he_init_side_by_side(tmp_path, monkeypatch):
    from test_convergence import _write_runs

    from mfbench import cli
    from mfbench.plots import convergence as plots

    targets = []
    for exp in ("fig5", "fig5_he"):
        runs = _write_runs(tmp_path, ["mnist"], [1, 3], exp)
        out = [str(tmp_path / f"{exp}-{n}.csv") for n in ("curves", "target", "target_runs")]
        assert cli.main(["fig5-summary", *runs, "--target", "mnist=0.65", "--out", out[0], "--target-out", out[1],
                         "--target-runs-out", out[2]]) == 0
        targets.append(out[1])
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append(fig))
    he_curves = str(tmp_path / "fig5_he-curves.csv")
    assert cli.main(["fig5-figure", he_curves, *targets, "--out", "c.png", "--target-out", "t.png"]) == 0
    curves, tgt = drawn
    assert "Fig. 5 (fig5_he)" in curves._suptitle.get_text()
    lines = {lab: h.lines[0].get_linestyle() for h, lab in zip(*tgt.axes[0].get_legend_handles_labels())}
    assert {"bp [fig5]", "bp [fig5_he]", "mf/ff [fig5_he]"} <= set(lines)
    assert lines["bp [fig5]"] == "-" and lines["bp [fig5_he]"] == "--"


def test_controls_summary_groups_by_experiment_label(tmp_path):
    from mfbench.experiments import controls

    paths = []
    for exp, opts in (("table3", {}), ("table3_frozen_m", {"learn_projection": False})):
        for seed in (0, 1):
            p = str(tmp_path / f"{exp}-{seed}.csv")
            run.train(small_cfg(algorithm="mf", experiment=exp, seed=seed, epochs=2, options=opts), p,
                      log=lambda s: None)
            paths.append(p)
    t = controls.summary(paths).set_index(["experiment", "pred_mode"])
    assert sorted(t.index) == [("table3", "bp"), ("table3", "ff"), ("table3_frozen_m", "bp"),
                               ("table3_frozen_m", "ff")]
    assert (t.n == 2).all() and (t.epochs == 2).all() and (t.train_time_s > 0).all()
    assert t.energy_J.isna().all()  # no NVML on a CPU: absent, never 0
    assert t.loc[("table3", "ff"), "mean"] != t.loc[("table3_frozen_m", "ff"), "mean"]
    from mfbench.plots.controls import controls_figure

    controls_figure(t.reset_index(), str(tmp_path / "c.png"), title="t")
    assert (tmp_path / "c.png").stat().st_size > 10_000 and (tmp_path / "c.pdf").exists()


def _acc_rows(experiment, accs, schedule="simultaneous", dataset="mnist"):
    """Last-epoch test accuracy rows of mf runs (ff and bp prediction), one run per seed."""
    import pandas as pd

    return pd.DataFrame([dict(experiment=experiment, dataset=dataset, arch="mlp", arch_detail="2x1000", algorithm="mf",
                              schedule=schedule, pred_mode=m, depth=2, width=1000, batch_size=128, lr=0.001,
                              seed=seed, epoch=5, phase="all", split="test", metric="accuracy", value=a + d,
                              unit="fraction")
                         for seed, a in enumerate(accs) for m, d in (("ff", 0.0), ("bp", -0.01))])


def test_control_claims_select_their_runs_and_pair_them_by_seed():
    import numpy as np
    import pandas as pd

    from mfbench import claims
    from mfbench.claims import ledger

    reg = {c.id: c for c in claims.load()}
    rng = np.random.default_rng(0)
    base = 0.98 + rng.normal(0, 0.002, 6)
    ev = pd.concat([_acc_rows("table3", base), _acc_rows("table3_frozen_m", base - 0.03),
                    _acc_rows("mf_schedule_matched", base + rng.normal(0, 0.001, 6), "greedy"),
                    _acc_rows("mf_schedule_matched", base, "simultaneous"),
                    _acc_rows("mf_schedule_converged", base - 0.02, "greedy"),
                    _acc_rows("mf_schedule_converged", base, "simultaneous")], ignore_index=True)
    got = ledger.judge([reg[i] for i in ("ctl-frozen-m-mnist", "ctl-mf-schedule-matched-mnist",
                                         "ctl-mf-schedule-converged-mnist", "ctl-frozen-m-cifar10")], ev)
    r = got.set_index("id")
    assert r.loc["ctl-frozen-m-mnist", "verdict"] == "superior" and r.loc["ctl-frozen-m-mnist", "n"] == 6
    assert abs(r.loc["ctl-frozen-m-mnist", "measured"] - 0.03) < 1e-9  # learned - frozen, same seed
    assert r.loc["ctl-mf-schedule-matched-mnist", "verdict"] == "equivalent"
    assert r.loc["ctl-mf-schedule-matched-mnist", "holds"]
    assert r.loc["ctl-mf-schedule-converged-mnist", "verdict"] == "not equivalent"  # greedy 2 points worse
    assert r.loc["ctl-frozen-m-cifar10", "verdict"] == "no evidence yet"


def test_fig5_he_claim_reads_epochs_to_target_per_seed():
    import pandas as pd

    from mfbench import claims
    from mfbench.claims import ledger

    c = next(c for c in claims.load() if c.id == "ctl-fig5-he-mnist-depth")
    rows = []
    for seed in range(4):
        for depth in (1, 5, 10):
            for alg, mode, slope in (("bp", "bp", 0.5), ("mf", "ff", 0.0), ("mf", "bp", 0.0)):
                rows.append(dict(experiment="fig5_he", dataset="mnist", arch_detail=f"{depth}x1000", depth=depth,
                                 width=1000, batch_size=256, lr=0.001, algorithm=alg, schedule="simultaneous",
                                 pred_mode=mode, seed=seed, split="val", target=0.98, epochs_run=20, reached=True,
                                 epoch_reached=2 + slope * depth + 0.1 * seed, metric="", value=float("nan")))
    r = ledger.judge([c], pd.DataFrame(rows)).iloc[0]
    assert r.verdict == "superior" and r.n == 4 and abs(r.measured - 0.5) < 1e-9
