"""The learning rules: MF's locality, prediction modes, schedules, determinism."""
import copy

import pytest
import torch
from conftest import small_cfg, trained_beside_a_changed_copy

from mfbench import algorithms, models
from mfbench.config import ConfigError
from mfbench.measure import SavedTensorMeter


def _mf(depth=3, seed=0, **opts):
    cfg = small_cfg(algorithm="mf", depth=depth, options=opts)
    torch.manual_seed(seed)
    return algorithms.build(models.mlp((1, 28, 28), depth, 32), 10, cfg)


def _batch(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_mf_layer_update_does_not_depend_on_later_layers():
    a, b = trained_beside_a_changed_copy(_mf(), lambda r: [*r.model.blocks[1:].parameters(),
                                                           *r.projections[1:].parameters()], *_batch(), steps=3)
    for pa, pb in zip([*a.model.blocks[0].parameters(), *a.projections[0].parameters()],
                      [*b.model.blocks[0].parameters(), *b.projections[0].parameters()]):
        assert torch.equal(pa, pb)
    # ...while the later layers did learn something different
    assert not torch.equal(a.model.blocks[2][0].weight, b.model.blocks[2][0].weight)


def test_bp_first_layer_does_depend_on_later_layers():
    cfg = small_cfg(algorithm="bp", depth=3)
    torch.manual_seed(0)
    a = algorithms.build(models.mlp((1, 28, 28), 3, 32), 10, cfg)
    b = copy.deepcopy(a)
    with torch.no_grad():
        b.model.blocks[2][0].weight.mul_(-3.0)
    x, y = _batch()
    a.train_step(x, y, "all")
    b.train_step(x, y, "all")
    assert not torch.equal(next(a.model.blocks[0].parameters()), next(b.model.blocks[0].parameters()))


def test_mf_prediction_modes():
    r = _mf(depth=3)
    x, _ = _batch()
    gs = r.goodness(x)
    assert len(gs) == 3
    torch.testing.assert_close(r.predict(x, "ff"), gs[0] + gs[1] + gs[2])
    torch.testing.assert_close(r.predict(x, "bp"), gs[2])
    soft = _mf(depth=3, ff_pred="softmax")
    g2 = soft.goodness(x)
    torch.testing.assert_close(soft.predict(x, "ff"), sum(g.softmax(-1) for g in g2))
    with_m0 = _mf(depth=2, input_projection=True)
    assert len(with_m0.goodness(x)) == 3


def test_mf_holds_one_layer_of_activations_bp_holds_all():
    x, y = _batch(n=128)

    def held(rule):
        meter = SavedTensorMeter(rule.parameters())
        with meter.track():
            rule.train_step(x, y, "all")
        return meter.peak

    mf = [held(_mf(depth=d, update="per_layer")) for d in (1, 2, 4, 8)]  # the step memory experiments take
    bps = []
    for d in (1, 2, 4, 8):
        torch.manual_seed(0)
        bps.append(held(algorithms.build(models.mlp((1, 28, 28), d, 32), 10, small_cfg(algorithm="bp", depth=d))))
    assert mf[1] == mf[2] == mf[3]  # flat in depth
    assert bps[1] < bps[2] < bps[3]  # grows with depth
    assert bps[3] - bps[2] == 2 * (bps[2] - bps[1])  # linearly


def test_greedy_schedule_trains_one_layer_per_phase():
    r = algorithms.build(models.mlp((1, 28, 28), 3, 32), 10, small_cfg(algorithm="mf", depth=3, schedule="greedy"))
    assert r.phases() == ["layer0", "layer1", "layer2"]
    x, y = _batch()
    before = [copy.deepcopy(b.state_dict()) for b in r.model.blocks]
    r.begin_phase("layer1")
    out = r.train_step(x, y, "layer1")
    assert set(out) == {"loss_layer1", "loss"}
    changed = [any(not torch.equal(v, r.model.blocks[i].state_dict()[k]) for k, v in before[i].items())
               for i in range(3)]
    assert changed == [False, True, False]
    assert r.predict(x, "bp").shape == (64, 10)


def test_cnn_blocks_feed_heads():
    m = models.cnn((3, 32, 32), [8, 16, 16, 16, 16])
    assert m.out_features == [8 * 16 * 16, 16 * 8 * 8, 16 * 4 * 4, 16 * 2 * 2, 16 * 1 * 1]
    r = algorithms.build(m, 10, small_cfg(algorithm="mf", arch="cnn", channels=[8, 16, 16, 16, 16],
                                          dataset="synthetic-cifar10"))
    x = torch.randn(4, 3, 32, 32)
    y = torch.randint(0, 10, (4,))
    assert torch.isfinite(r.train_step(x, y, "all")["loss"])
    assert r.predict(x, "ff").shape == (4, 10)


def test_bad_options_and_schedules_are_rejected():
    with pytest.raises(ConfigError, match="unknown option.*allowed: cnn_head"):
        small_cfg(algorithm="mf", options={"m_int": "zeros"})
    with pytest.raises(ConfigError, match="m_init='ones' not allowed; allowed: kaiming_uniform"):
        small_cfg(algorithm="mf", options={"m_init": "ones"})
    with pytest.raises(ConfigError, match="does not support schedule 'greedy'"):
        algorithms.build(models.mlp((1, 28, 28), 2, 8), 10, small_cfg(algorithm="bp", schedule="greedy"))
