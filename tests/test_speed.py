"""A cheaper training step that computes the same thing: joint MF update, one-pass prediction,
compiled step, the runner's loss accumulation; and the speed benchmark's code paths."""
import dataclasses

import pytest
import torch
from conftest import small_cfg

from mfbench import accel, data, run
from mfbench.experiments import minimal, speed


def _trained(cfg, steps=4, batch=37):
    """A rule after `steps` training steps on synthetic data (same batches for every cfg of one seed)."""
    splits = run.load_data(cfg, "cpu")
    rule = run.build(cfg, "cpu", splits)
    x, y = splits.train
    losses = []
    for phase in rule.phases():
        rule.begin_phase(phase)
        for xb, yb in list(data.batches(x, y, batch, torch.Generator().manual_seed(1)))[:steps]:
            losses.append(rule.train_step(xb, yb, phase))
    return rule, losses


def _update(cfg, update):
    return dataclasses.replace(cfg, options={**cfg.options, "update": update})


@pytest.mark.parametrize("kw", [
    dict(depth=3, width=24, options={"input_projection": True}),  # an M_0 on the input too
    dict(depth=3, width=24, schedule="greedy"),
    dict(depth=2, width=24, optimizer="adamw", weight_decay=0.01),
    dict(arch="cnn", channels=[4, 6, 8], dataset="synthetic-cifar10"),
])
@pytest.mark.parametrize("update", ["joint", "batched"])
def test_joint_update_gives_the_per_layer_parameters(update, kw):
    """One backward over the summed local losses + one optimizer step against each layer's
    backward and step in turn, after 4 steps.

    joint: bitwise. Each parameter receives exactly its own layer's gradient (the detach stops
    the rest) through the same kernels, and the optimizer's per-tensor arithmetic is the same.
    batched: to 1e-5 absolute. One batched GEMM for every layer's G_i, and one cross-entropy over
    them, sum in another order than one of each per layer: gradients differ in the last float32
    bits, which Adam's normalised steps turn into at most about 5e-7 on parameters (measured,
    4 to 12 steps). Any other difference (a missing detach, a rescaled loss) moves parameters by
    about lr = 1e-3 per step. A CNN's layers differ in width: it takes the joint step.
    """
    cfg = small_cfg(**kw)
    fast, lj = _trained(_update(cfg, update))
    per_layer, lp = _trained(_update(cfg, "per_layer"))
    assert len(fast.optimizers) == 1 and len(per_layer.optimizers) > 1
    pj, pp = dict(fast.named_parameters()), dict(per_layer.named_parameters())
    assert pj.keys() == pp.keys()
    untrained = dict(_trained(cfg, steps=0)[0].named_parameters())
    exact = update == "joint" or kw.get("arch") == "cnn"
    for k in pj:
        if exact:
            assert torch.equal(pj[k], pp[k]), k
        else:
            torch.testing.assert_close(pj[k], pp[k], rtol=0, atol=1e-5, msg=k)
        assert not torch.equal(pj[k], untrained[k]) or kw.get("schedule") == "greedy", k  # every step moved it
    for a, b in zip(lj, lp):  # the reported losses: same keys, equal up to float summation order
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=0)


def test_joint_update_is_not_trivially_equal():
    """The comparison above can fail: without the detach between layers the joint step differs."""
    cfg = small_cfg(depth=3, width=24)
    joint, _ = _trained(_update(cfg, "joint"))
    splits = run.load_data(cfg, "cpu")
    rule = run.build(_update(cfg, "joint"), "cpu", splits)
    x, y = splits.train
    for xb, yb in list(data.batches(x, y, 37, torch.Generator().manual_seed(1)))[:4]:
        acts, h = [], xb
        for b in rule.model.blocks:  # the same joint step, gradient flowing through every layer
            h = b(h)
            acts.append(h)
        loss = rule._layer_losses(acts, rule.projections, yb).sum()
        rule.opt.zero_grad(set_to_none=True)
        loss.backward()
        rule.opt.step()
    w = "model.blocks.0.1.weight"
    assert not torch.equal(rule.get_parameter(w), joint.get_parameter(w))


@pytest.mark.parametrize("kw", [dict(algorithm="mf", options={"input_projection": True}), dict(algorithm="mf"),
                                dict(algorithm="mf", options={"ff_pred": "softmax"}), dict(algorithm="bp"),
                                dict(algorithm="ff")])
def test_predict_all_equals_each_mode(kw):
    rule, _ = _trained(small_cfg(**kw), steps=2)
    rule.eval()
    x = run.load_data(small_cfg(**kw), "cpu").test[0][:50]
    out = rule.predict_all(x)
    assert list(out) == list(rule.pred_modes)
    for m, s in out.items():
        assert torch.equal(s, rule.predict(x, m)), m


def test_runner_accumulates_losses_per_key():
    cfg = small_cfg(algorithm="mf", depth=3, width=16)
    splits = run.load_data(cfg, "cpu")
    rule = run.build(cfg, "cpu", splits)
    x, y = splits.train
    got = run.train_epoch(rule, x, y, 100, torch.Generator().manual_seed(3), "all")
    rule2 = run.build(cfg, "cpu", splits)
    steps = [rule2.train_step(xb, yb, "all") for xb, yb in data.batches(x, y, 100, torch.Generator().manual_seed(3))]
    assert list(got) == list(steps[0]) == ["loss_layer0", "loss_layer1", "loss_layer2", "loss"]
    for k in got:
        want = steps[0][k]
        for s in steps[1:]:
            want = want + s[k]
        assert torch.equal(got[k], want / len(steps))


def test_fused_optimizer_is_declared_and_cuda_only():
    rule = run.build(small_cfg(algorithm="bp"), "cpu", run.load_data(small_cfg(), "cpu"))
    assert not rule.opt.defaults.get("fused")  # the CPU keeps torch's default implementation
    cuda_cfg = dataclasses.replace(small_cfg(algorithm="bp"), device="cuda")
    object.__setattr__(cuda_cfg, "resolved_device", lambda: "cuda")  # as on a GPU box, without one
    model = run.models.build(cuda_cfg, (1, 28, 28))
    from mfbench.algorithms import build

    assert build(model, 10, cuda_cfg).opt.defaults["fused"] is True
    off = dataclasses.replace(cuda_cfg, fused_optimizer=False)
    object.__setattr__(off, "resolved_device", lambda: "cuda")
    assert not build(model, 10, off).opt.defaults.get("fused")


def test_memory_experiments_take_the_per_layer_step():
    from mfbench.experiments import memory

    cfg = small_cfg(algorithm="mf")
    rule, _ = memory.start_rule(cfg, "cpu", run.load_data(cfg, "cpu"))
    assert rule.opts["update"] == "per_layer"
    explicit = small_cfg(algorithm="mf", options={"update": "joint"})  # a spec that asks for joint gets it
    assert memory.start_rule(explicit, "cpu", run.load_data(cfg, "cpu"))[0].opts["update"] == "joint"
    assert run.build(cfg, "cpu", run.load_data(cfg, "cpu")).opts["update"] == "joint"  # elsewhere the default


def test_mf_update_is_chosen_by_device_and_recorded(tmp_path):
    """`update: auto` (the default) takes batched on CUDA and joint on the CPU, and the run's
    metadata names the one taken; an explicit choice is kept on any device."""
    import json

    from mfbench.algorithms import RULES

    assert RULES["mf"].device_update("cuda") == "batched" and RULES["mf"].device_update("cpu") == "joint"
    cfg = small_cfg(algorithm="mf", depth=2, width=8, epochs=1, train_subset=64)
    assert cfg.options == {}
    run.train(cfg, str(tmp_path / "a.csv"), log=lambda s: None)
    meta = json.loads(open(run.meta_path(str(tmp_path / "a.csv"))).read())
    assert meta["resolved_options"]["update"] == "joint"
    explicit = dataclasses.replace(cfg, options={"update": "batched"})
    assert run.build(explicit, "cpu", run.load_data(cfg, "cpu")).opts["update"] == "batched"


@pytest.mark.slow
def test_compiled_step_matches_eager():
    """torch.compile (inductor, here on the CPU) against eager, three steps. Not bitwise: fused
    kernels sum in another order, so parameters agree to float32 rounding (rtol 1e-4 after Adam's
    normalised steps); the check still fails for a step that computes something else."""
    cfg = small_cfg(algorithm="mf", depth=2, width=16)  # a graph break at backward(), a batched matmul
    compiled_cfg = dataclasses.replace(cfg, compile="default")
    splits = run.load_data(cfg, "cpu")
    x, y = splits.train
    rules = []
    for c in (cfg, compiled_cfg):
        rule = run.build(c, "cpu", splits)
        step = accel.training_step(rule, c, "cpu")
        for xb, yb in list(data.batches(x, y, 64, torch.Generator().manual_seed(1)))[:3]:
            out = step(xb, yb, "all")
        rules.append((rule, out))
    (eager, le), (comp, lc) = rules
    for (k, a), b in zip(eager.named_parameters(), comp.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=k)
    for k in le:
        torch.testing.assert_close(lc[k], le[k], rtol=1e-4, atol=1e-5)


# --- the speed benchmark's code paths -----------------------------------------------------------
def _built(algorithm, depth, **opts):
    cfg = small_cfg(algorithm=algorithm, depth=depth, width=16, options=opts)
    splits = run.load_data(cfg, "cpu")
    rule = run.build(cfg, "cpu", splits)
    speed.as_on_cuda(rule)
    rule.begin_phase("all")
    return rule, splits.train[0][:32], splits.train[1][:32]


def test_launch_counts_follow_the_step_structure():
    """Counted ops per step: views are free, each layer adds work, and MF's batched step adds
    less per layer than BP (no gradient w.r.t. a layer's input, every layer's backward batched) and
    than its per-layer step, and needs fewer than BP in all from depth 2 on."""
    n = {}
    for label, alg, opts in [("bp", "bp", {}), ("per_layer", "mf", {"update": "per_layer"}),
                             ("batched", "mf", {"update": "batched"})]:
        for d in (2, 3):
            rule, x, y = _built(alg, d, **opts)
            n[label, d] = speed.launches_per_step(rule.train_step, x, y, "all", "cpu", steps=2)
    per_layer = {k: n[k, 3] - n[k, 2] for k in ("bp", "per_layer", "batched")}
    assert per_layer["batched"] < per_layer["bp"] < per_layer["per_layer"]
    assert n["batched", 2] < n["bp", 2] and n["batched", 3] < n["bp", 3]  # MF's default on CUDA: fewer at every depth
    assert all(v == int(v) and v > 0 for v in n.values())  # the same work every step
    assert not speed.does_work(torch.ops.aten.view.default) and not speed.does_work(torch.ops.aten.t.default)
    assert speed.does_work(torch.ops.aten.addmm.default) and speed.does_work(torch.ops.aten.add_.Tensor)


@pytest.mark.parametrize("algorithm,opts", [("bp", {}), ("mf", {"update": "per_layer"}), ("mf", {"update": "joint"}),
                                           ("mf", {"update": "batched"}), ("ff", {}), ("fa", {}), ("dfa", {}),
                                           ("fg", {}), ("lbp", {}), ("lbp", {"local": "local"}), ("sff", {})])
def test_minimal_step_computes_the_rules_maths(algorithm, opts):
    """The hand-written step `mfbench speed --vs-minimal` times the runner against: the same
    parameters after 3 steps (float rounding apart: functional ops, another reduction order; FA/DFA's
    hand-written backward), and every parameter moved. Each step starts from one torch seed on both
    sides, so FF draws the same negative labels and FG the same directions. sff on a CNN (it needs
    conv blocks); MF batched's runner step has its own batched backward, the minimal one autograd's."""
    if algorithm == "sff":
        cfg = small_cfg(algorithm="sff", arch="cnn", channels=[4, 6, 8], dataset="synthetic-cifar10")
        splits = run.load_data(cfg, "cpu")
        rule = run.build(cfg, "cpu", splits)
        rule.begin_phase("all")
        x, y = splits.train[0][:32], splits.train[1][:32]
    else:
        rule, x, y = _built(algorithm, 3, **opts)
    mine = minimal.minimal_step(rule)
    assert minimal.label(rule) in minimal.MINIMAL
    before = [p.detach().clone() for p in minimal.rule_params(rule)]
    for i in range(3):
        torch.manual_seed(i)
        rule.train_step(x, y, "all")
        torch.manual_seed(i)
        mine(x, y)
    ours = minimal.rule_params(rule)
    assert len(ours) == len(mine.params) == len(list(p for p in rule.parameters() if p.requires_grad))
    # FA/DFA: a hand-written backward sums in another order; Adam's normalised step turns an element's
    # near-zero gradient's last bits into up to ~2e-5 (measured). A wrong rule moves them by ~lr = 1e-3 a step.
    atol = 1e-4 if algorithm in ("fa", "dfa") else 1e-5
    for a, b, a0 in zip(ours, mine.params, before):
        torch.testing.assert_close(b, a, rtol=0, atol=atol)
        assert (a - a0).abs().max() > 1e-3  # a step that left a parameter alone would pass the line above
    assert speed.paired_rates({"a": lambda: mine(x, y)}, "cpu", 1, 2)["a"] > 0


@pytest.mark.parametrize("algorithm,opts", [("mf", {"input_projection": True}), ("fg", {"directions": 2}),
                                           ("lbp", {"frozen": True}), ("fa", {"local": "greedy"})])
def test_minimal_step_refuses_what_it_does_not_cover(algorithm, opts):
    rule, _, _ = _built(algorithm, 2, **opts)
    with pytest.raises(ValueError, match="minimal step covers"):
        minimal.minimal_step(rule)


@pytest.mark.slow
def test_startup_probe_times_each_phase_of_a_real_train_process():
    st = speed.startup(["--algorithm", "bp", "--depth", "1", "--width", "8", "--epochs", "1", "--device", "cpu",
                        "--train-subset", "256"], repeats=1)
    for kind in ("wall", "cpu"):
        t = st[kind]
        assert all(len(v) == 1 and v[0] >= 0 for v in t.values())
        assert t["total"][0] == pytest.approx(sum(t[k][0] for k, _ in speed.PHASES))
        assert t["imports"][0] > 0 and t["help"][0] < t["total"][0]
    assert st["cpu"]["total"][0] <= st["wall"]["total"][0] * 1.5  # one thread, mostly: CPU time ~ wall time


def test_precision_flags_follow_the_declared_precision():
    for precision, tf32 in [("tf32", True), ("fp32", False)]:  # fp32 also turns cuDNN's default TF32 off
        run.build(small_cfg(precision=precision), "cpu", run.load_data(small_cfg(), "cpu"))
        assert torch.backends.cuda.matmul.allow_tf32 is tf32 and torch.backends.cudnn.allow_tf32 is tf32


def test_bf16_step_autocasts():
    cfg = small_cfg(algorithm="bp", precision="bf16")
    splits = run.load_data(cfg, "cpu")
    rule = run.build(cfg, "cpu", splits)
    seen = []
    rule.head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    accel.training_step(rule, cfg, "cpu")(splits.train[0][:8], splits.train[1][:8], "all")
    rule.train_step(splits.train[0][:8], splits.train[1][:8], "all")  # the plain step stays fp32
    assert seen == [torch.bfloat16, torch.float32]
    assert all(p.dtype == torch.float32 for p in rule.parameters())  # master weights stay fp32



def test_several_seeds_in_one_process_write_what_separate_runs_write(tmp_path):
    """`--seeds`: each seed keeps its own init, batch order and CSV; only start-up is shared."""
    import pandas as pd

    from mfbench import cli

    args = ["train", "--algorithm", "mf", "--depth", "2", "--width", "16", "--epochs", "2", "--train-subset", "300",
            "--batch-size", "64", "--device", "cpu"]
    assert cli.main([*args, "--seeds", "3", "4", "--out", str(tmp_path / "many" / "s{seed}.csv")]) == 0
    for s in (3, 4):
        assert cli.main([*args, "--seed", str(s), "--out", str(tmp_path / f"one{s}.csv")]) == 0

    def numbers(p):
        df = pd.read_csv(p, keep_default_na=False)
        return df[~df.metric.isin(["epoch_time", "peak_rss_bytes"])].reset_index(drop=True)

    a, b = numbers(tmp_path / "many" / "s3.csv"), numbers(tmp_path / "many" / "s4.csv")
    pd.testing.assert_frame_equal(a, numbers(tmp_path / "one3.csv"))
    pd.testing.assert_frame_equal(b, numbers(tmp_path / "one4.csv"))
    assert set(a.seed) == {3} and set(b.seed) == {4} and not a.value.equals(b.value)
    assert cli.main([*args, "--seeds", "1", "2", "--out", str(tmp_path / "x.csv")]) == 2  # no {seed} in --out
    assert cli.main([*args, "--seed", "1", "--seeds", "1", "--out", str(tmp_path / "{seed}.csv")]) == 2


def test_time_model_costs_steps_on_the_meta_device_and_stacking_saves_launch_bound_time():
    """Per-step FLOPs and launches from the meta device (no arithmetic), steps from the spec, and the
    estimate's arithmetic: a launch-bound MLP step costs k seeds one step's launches when stacked."""
    from mfbench.experiments import timemodel

    mlp = {"algorithm": "bp", "arch": "mlp", "dataset": "synthetic-mnist", "depth": 2, "width": 16, "batch_size": 32,
           "epochs": 2, "train_subset": 640, "val_fraction": 0.0, "seed": 0, "experiment": "t"}
    flops, launches = timemodel.step_cost(mlp)
    rule, x, y = _built("bp", 2)  # width 16, batch 32: the same step, counted on the CPU
    assert launches == speed.launches_per_step(rule.train_step, x, y, "all", "cpu", steps=1)
    gemm = 2 * 32  # FLOPs per multiply-add row of a batch of 32
    # forward and weight gradients of all three layers, input gradients of all but the first
    assert flops == gemm * (2 * (784 * 16 + 16 * 16 + 16 * 10) + 16 * 16 + 16 * 10)
    assert timemodel.steps_of(mlp) == 2 * 20
    assert timemodel.steps_of({**mlp, "schedule": "greedy", "depth": 3}) == 3 * 2 * 20
    # the training split as data.load makes it: val held out first, then the subset; MedMNIST keeps its own val;
    # a transfer task's `classes` keep their share
    real = {**mlp, "train_subset": 0, "val_fraction": 0.1, "epochs": 1, "batch_size": 100}
    assert timemodel.steps_of({**real, "dataset": "mnist"}) == 540
    assert timemodel.steps_of({**real, "dataset": "mnist", "train_subset": 1000}) == 10
    assert timemodel.steps_of({**real, "dataset": "pathmnist"}) == 900  # 89996 images, none held out
    assert timemodel.steps_of({**real, "dataset": "cifar10", "classes": [0, 1, 2, 3, 4]}) == 225
    jobs = [{"spec": {**mlp, "seed": s}, "seeds": [s], "stack": 1} for s in range(4)]
    stacked = [{"spec": mlp, "seeds": [0, 1, 2, 3], "stack": 4}]
    a = timemodel.estimate(jobs, launch_us=10, tflops=1e6, job_s=5, log=print)
    b = timemodel.estimate(stacked, launch_us=10, tflops=1e6, job_s=5, log=print)
    step = launches * 10e-6
    assert a["separate"] == pytest.approx(4 * (40 * step + 5)) and a["jobs_separate"] == 4
    assert b["stacked"] == pytest.approx(40 * step + 5) and b["jobs_stacked"] == 1 and b["steps"] == a["steps"] == 160
