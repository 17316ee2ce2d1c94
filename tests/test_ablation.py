"""The ablation ladder (BP -> BP-DS -> MF-joint -> MF): which parameters each loss reaches."""
import pytest
import torch
from conftest import small_cfg, trained_beside_a_changed_copy

from mfbench import algorithms, models

DEPTH = 3


def _rule(name, seed=0, **opts):
    cfg = small_cfg(algorithm=name, depth=DEPTH, options=opts)
    torch.manual_seed(seed)
    return algorithms.build(models.mlp((1, 28, 28), DEPTH, 32), 10, cfg)


def _batch(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _reach(rule, loss, groups):
    """The names of the parameter groups `loss` sends a non-zero gradient to."""
    out = set()
    for name, params in groups.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        if any(g is not None and g.abs().sum() > 0 for g in grads):
            out.add(name)
    return out


def _groups(rule, readouts):
    g = {f"block{i}": list(b.parameters()) for i, b in enumerate(rule.model.blocks)}
    g.update({f"readout{i}": list(m.parameters()) for i, m in enumerate(readouts)})
    if hasattr(rule, "head"):
        g["head"] = list(rule.head.parameters())
    return g


def test_bp_ds_readout_losses_reach_their_layer_and_every_earlier_one_the_output_loss_reaches_all():
    r = _rule("bp_ds")
    losses = r.losses(*_batch())
    groups = _groups(r, r.readouts)
    for i in range(DEPTH):
        assert _reach(r, losses[f"loss_layer{i}"], groups) == {*(f"block{j}" for j in range(i + 1)), f"readout{i}"}
    assert _reach(r, losses["loss_output"], groups) == {*(f"block{j}" for j in range(DEPTH)), "head"}


@pytest.mark.parametrize("update", ["batched", "joint"])
def test_mf_joint_layer_losses_reach_every_earlier_layer_no_detach(update):
    r = _rule("mf_joint", update=update)
    losses = r.losses(*_batch())
    groups = _groups(r, r.projections)
    assert set(losses) == {f"loss_layer{i}" for i in range(DEPTH)}  # MF's losses, no output head
    for i in range(DEPTH):
        assert _reach(r, losses[f"loss_layer{i}"], groups) == {*(f"block{j}" for j in range(i + 1)), f"readout{i}"}


def test_mf_joint_computes_mfs_losses_and_step_on_the_same_parameters():
    """Same parameters, same losses: MF-joint differs from MF only in the gradient path."""
    mf, joint = _rule("mf", update="joint"), _rule("mf_joint", update="joint")
    assert [n for n, _ in mf.named_parameters()] == [n for n, _ in joint.named_parameters()]
    for a, b in zip(mf.parameters(), joint.parameters()):
        assert torch.equal(a, b)
    x, y = _batch()
    before = {k: v.item() for k, v in joint.losses(x, y).items()}
    got_mf, got_joint = mf.train_step(x, y, "all"), joint.train_step(x, y, "all")
    for k, v in before.items():  # the step reports the losses it took, equal to MF's at the same parameters
        assert got_joint[k].item() == pytest.approx(v) == pytest.approx(got_mf[k].item())
    # the last layer gets the same gradient either way (no later loss); the first does not
    assert torch.equal(mf.projections[-1][-1].weight, joint.projections[-1][-1].weight)
    assert not torch.equal(mf.model.blocks[0][1].weight, joint.model.blocks[0][1].weight)


@pytest.mark.parametrize("name, local", [("bp", False), ("bp_ds", False), ("mf_joint", False), ("mf", True)])
def test_ladder_first_layer_learns_from_later_layers_except_under_mf(name, local):
    """The changed-copy probe: scramble everything after layer 0; only MF's layer 0 comes out the same."""
    r = _rule(name)
    later = lambda q: [*q.model.blocks[1:].parameters(),
                       *(p for n, p in q.named_parameters() if not n.startswith("model.") and not _first_readout(n))]
    a, b = trained_beside_a_changed_copy(r, later, *_batch(), steps=2)
    same = all(torch.equal(p, q) for p, q in zip(a.model.blocks[0].parameters(), b.model.blocks[0].parameters()))
    assert same is local


def _first_readout(name):
    return name.startswith(("projections.0.", "readouts.0."))


def test_ladder_rules_train_through_the_runner(tmp_path):
    from mfbench.run import train

    for name in ("bp_ds", "mf_joint"):
        df = train(small_cfg(algorithm=name, epochs=3), str(tmp_path / f"{name}.csv"), log=lambda s: None)
        acc = df[(df.metric == "accuracy") & (df.split == "test")]
        assert set(acc.pred_mode) == set(algorithms.RULES[name].pred_modes)
        assert acc[acc.epoch == 3].value.max() > 0.3  # chance: 0.1


def test_ablation_summary_reports_both_protocols_costs_and_renders(tmp_path):
    from mfbench.experiments import ablation
    from mfbench.plots.ablation import ablation_figure
    from mfbench.run import train

    paths = []
    for protocol, keys in (("matched", dict(epochs=2, val_fraction=0.0)),
                           ("converged", dict(epochs=4, patience=1, val_fraction=0.1))):
        for name in ("bp", "mf"):
            for seed in (0, 1):
                out = str(tmp_path / f"{protocol}_{name}_{seed}.csv")
                train(small_cfg(algorithm=name, seed=seed, experiment=f"ablation_{protocol}", **keys), out,
                      log=lambda s: None)
                paths.append(out)
    t = ablation.summary(paths)
    assert set(t.protocol) == {"A: own convergence", "B: matched passes"}
    assert list(t[t.experiment == "ablation_matched"].algorithm) == ["bp", "mf", "mf"]  # ladder order, mf's two modes
    assert (t.n == 2).all() and (t[t.experiment == "ablation_matched"].epochs == 2).all()
    assert t.end_to_end_s.to_numpy() == pytest.approx((t.epochs * t.epoch_time_s).to_numpy())
    assert t.energy_J.isna().all()  # no NVML on a CPU: absent, never 0
    assert (t.memory_metric == "peak_rss_bytes").all() and (t.peak_memory_bytes > 0).all()
    ablation_figure(t, str(tmp_path / "ablation.png"))
    assert (tmp_path / "ablation.png").stat().st_size > 10_000 and (tmp_path / "ablation.pdf").exists()
