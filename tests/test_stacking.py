"""Stacked seeds (run key seed_stack): k seeds of one MLP cell as one stacked model equal k separate
runs, seed by seed, within float tolerance; a diverged seed stops alone; bad input fails at load."""
import json

import pandas as pd
import pytest
import torch
from conftest import small_cfg

from mfbench import cli, data, run
from mfbench.algorithms.stacking import Stack
from mfbench.config import ConfigError, RunConfig

STACKABLE = [("bp", {}), ("mf", {}), ("mf", {"update": "per_layer"}), ("fa", {}), ("dfa", {}), ("ff", {}),
             ("ff", {"goodness": "sum", "norm": "length", "label_value": "one", "readout_from_layer": 1})]


def _separate(cfg, steps, batch=32):
    splits = run.load_data(cfg, "cpu")
    rule = run.build(cfg, "cpu", splits)
    x, y = splits.train
    rule.begin_phase("all")
    rule.train()
    gen = torch.Generator().manual_seed(cfg.seed)
    for xb, yb in list(data.batches(x, y, batch, gen))[:steps]:
        rule.train_step(xb, yb, "all")
    return rule


@pytest.mark.parametrize("algorithm,opts", STACKABLE)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_each_stacked_seed_equals_its_separate_run(algorithm, opts, optimizer):
    """After 5 steps each seed's parameters (and its optimizer state, written back) equal those of
    its own run: the stack's batched matmuls sum in another order, nothing else differs. A wrong
    batch order, a missing detach or a rescaled loss moves parameters by ~lr per step."""
    seeds, steps, batch = [3, 4, 5], 5, 32
    cfgs = [small_cfg(algorithm=algorithm, depth=3, width=16, options=opts, seed=s, optimizer=optimizer,
                      lr=0.01 if optimizer == "sgd" else 1e-3) for s in seeds]
    splits = run.load_data(cfgs[0], "cpu")
    rules, rngs = [], []
    for c in cfgs:  # each seed's random draws (FF's wrong labels) continue its global RNG after its build
        rules.append(run.build(c, "cpu", splits))
        rngs.append(torch.Generator())
        rngs[-1].set_state(torch.get_rng_state())
    untrained = [{n: p.detach().clone() for n, p in r.named_parameters()} for r in rules]
    stack = Stack(rules, rngs)
    assert set(stack.names) == {n for n, p in rules[0].named_parameters() if p.requires_grad}
    x, y = splits.train
    perms = torch.stack([torch.randperm(len(y), generator=torch.Generator().manual_seed(s)) for s in seeds])
    for i in range(steps):
        idx = perms[:, i * batch:(i + 1) * batch]
        stack.step(x[idx], y[idx])
    stack.to_rules()
    for c, r, r0 in zip(cfgs, rules, untrained):
        alone = _separate(c, steps, batch)
        for n, p in alone.named_parameters():
            torch.testing.assert_close(r.get_parameter(n), p, rtol=0, atol=2e-5, msg=n)
            # moved as in its own run (FF's readout of layer 0 with readout_from_layer 1 never trains)
            idle = opts.get("readout_from_layer") == 1 and n.startswith("readouts.0.")
            assert torch.equal(p, r0[n]) == torch.equal(r.get_parameter(n), r0[n]) == idle, n
        st_alone, st_stack = alone.state()["optimizers"], r.state()["optimizers"]
        for a, b in zip(st_alone, st_stack):
            for k in a["state"]:
                for key, v in a["state"][k].items():
                    torch.testing.assert_close(b["state"][k][key], v, rtol=1e-3, atol=1e-6)
    assert not torch.equal(rules[0].get_parameter(stack.names[0]), rules[1].get_parameter(stack.names[0]))


@pytest.mark.parametrize("algorithm", ["mf", "ff"])  # ff: each seed's wrong labels from its own RNG stream
def test_stacked_cli_writes_what_separate_runs_write(tmp_path, algorithm):
    args = ["train", "--algorithm", algorithm, "--depth", "2", "--width", "16", "--epochs", "2", "--train-subset", "300",
            "--batch-size", "64", "--device", "cpu"]
    assert cli.main([*args, "--seeds", "3", "4", "5", "--seed-stack", "2", "--out", str(tmp_path / "st{seed}.csv")]) == 0
    for s in (3, 4, 5):
        assert cli.main([*args, "--seed", str(s), "--out", str(tmp_path / f"one{s}.csv")]) == 0

    def numbers(p):
        df = pd.read_csv(p, keep_default_na=False)
        return df[~df.metric.isin(["epoch_time", "peak_rss_bytes"])].reset_index(drop=True)

    for s in (3, 4, 5):
        a, b = numbers(tmp_path / f"st{s}.csv"), numbers(tmp_path / f"one{s}.csv")
        pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
        assert (a.value - b.value).abs().max() < 1e-4
    meta = json.loads(open(run.meta_path(str(tmp_path / "st3.csv"))).read())
    assert meta["seed_stack"]["seeds"] == [3, 4] and meta["config"]["seed_stack"] == 2
    single = json.loads(open(run.meta_path(str(tmp_path / "st5.csv"))).read())  # the odd one out: alone
    assert "seed_stack" not in single


def test_a_diverged_seed_stops_alone(tmp_path, monkeypatch):
    """Seed 2 starts with an infinite head weight (its loss is NaN from the first step): it is recorded
    as diverged at epoch 1 and leaves the stack; seeds 1 and 3 train all their epochs and write what
    their own runs write."""
    build = run.build

    def poisoned(cfg, device, splits):
        rule = build(cfg, device, splits)
        if cfg.seed == 2:
            with torch.no_grad():
                rule.head[-1].weight[0, 0] = float("inf")
        return rule

    monkeypatch.setattr(run, "build", poisoned)
    cfgs = [small_cfg(algorithm="bp", depth=2, width=16, seed=s, epochs=3, train_subset=256, batch_size=64)
            for s in (1, 2, 3)]
    splits = run.load_data(cfgs[0], "cpu")
    outs = [str(tmp_path / f"s{c.seed}.csv") for c in cfgs]
    run.train_stacked(cfgs, outs, splits=splits, log=lambda s: None)
    for c, o in zip(cfgs, outs):
        df = pd.read_csv(o, keep_default_na=False)
        alone = run.train(c, str(tmp_path / f"alone{c.seed}.csv"), splits=splits, log=lambda s: None)
        assert df.epoch.max() == alone.epoch.max() == (1 if c.seed == 2 else 3)
        assert (df.metric == "diverged").any() == (c.seed == 2)
        acc, acc_alone = df[df.metric == "accuracy"].value.to_numpy(), alone[alone.metric == "accuracy"].value
        assert len(acc) == len(acc_alone) == (0 if c.seed == 2 else 6)  # val and test, each epoch
        assert abs(acc - acc_alone.to_numpy()).max(initial=0) < 1e-6
    mixed = [cfgs[0], small_cfg(algorithm="bp", depth=2, width=16, seed=5, lr=0.5)]
    with pytest.raises(ValueError, match="seed alone"):  # one cell: configs that differ in more are refused
        run.train_stacked(mixed, [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], splits=splits)


@pytest.mark.parametrize("kw,match", [
    (dict(algorithm="lbp"), "seed_stack=2: algorithm 'lbp' has no stacked step; seed_stack > 1 is allowed for"),
    (dict(algorithm="bp", arch="cnn", dataset="synthetic-cifar10"), "seed_stack=2: arch 'cnn' cannot stack"),
    (dict(algorithm="mf", schedule="greedy"), "seed_stack=2: schedule 'greedy' cannot stack"),
    (dict(algorithm="fa", options={"local": "greedy"}), "seed_stack=2: fa with local losses cannot stack"),
    (dict(algorithm="ff", options={"negatives": "hard"}), "seed_stack=2: ff with hard negatives"),
    (dict(algorithm="fg"), "seed_stack=2: algorithm 'fg' has no stacked step"),
])
def test_what_cannot_stack_fails_at_config_load(kw, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig.from_dict({**small_cfg().to_dict(), **kw, "seed_stack": 2})


def test_bad_seed_stack_values_fail_in_one_line(tmp_path, capsys):
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="seed_stack must be an integer >= 1"):
            RunConfig.from_dict({"seed_stack": bad})
    with pytest.raises(ConfigError, match="seed_stack must be an integer"):
        RunConfig.from_dict({"seed_stack": "2"})
    args = ["train", "--algorithm", "bp", "--depth", "1", "--width", "8", "--device", "cpu", "--seed-stack", "3"]
    assert cli.main([*args, "--seeds", "1", "2", "--out", str(tmp_path / "{seed}.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed_stack=3 is more than the 2 seed(s) given" in err[0]
    assert not list(tmp_path.iterdir())  # no partial output


@pytest.mark.parametrize("spec", [
    {"algorithm": "mf"}, {"algorithm": "bp"}, {"algorithm": "fa"}, {"algorithm": "dfa"}, {"algorithm": "ff"},
    {"algorithm": "lbp"}, {"algorithm": "fg"}, {"algorithm": "ff", "options": {"peer_norm": 0.03}}, {"algorithm": "bp", "arch": "cnn"}, {"algorithm": "mf", "schedule": "greedy"},
    {"algorithm": "mf", "options": {"input_projection": True}}, {"algorithm": "fa", "options": {"local": "local"}},
    {"algorithm": "bp", "precision": "bf16"}, {"algorithm": "mf", "options": {"update": "per_layer"}},
])
def test_the_workflows_torch_free_check_agrees_with_config_load(spec):
    """The Snakefile decides which cells stack without torch (wfconfig.can_stack); RunConfig decides at
    load. They agree, and the workflow's list of stackable rules is the registry's."""
    from mfbench import wfconfig
    from mfbench.algorithms import RULES

    assert set(wfconfig.STACKABLE) == {n for n, r in RULES.items() if r.stackable}
    try:
        RunConfig.from_dict({**spec, "seed_stack": 2})
        loads = True
    except ConfigError:
        loads = False
    assert wfconfig.can_stack(spec) == loads


def test_workflow_seed_stack_beyond_the_seeds_fails_in_one_line():
    from mfbench import wfconfig

    assert wfconfig.seed_stack({"seeds": [0, 1], "seed_stack": 2}, "table3") == 2
    with pytest.raises(ConfigError, match=r"^workflow config table3.seed_stack: 3 is more than the section's 2 seeds"):
        wfconfig.seed_stack({"seeds": [0, 1], "seed_stack": 3}, "table3")
