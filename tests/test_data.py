import pytest
import torch

from mfbench import data
from mfbench.config import ConfigError


def test_synthetic_shapes_split_and_normalisation():
    s = data.load("synthetic-cifar10", "unused", val_fraction=0.1, data_seed=0)
    (xtr, ytr), (_, yva), (_, yte) = s.train, s.val, s.test
    assert xtr.shape[1:] == (3, 32, 32) and xtr.dtype == torch.float32
    assert len(yva) == 600 and len(ytr) == 5400 and len(yte) == 1000
    assert set(ytr.unique().tolist()) == set(range(10))
    # normalised with the training portion's statistics
    assert xtr.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (xtr.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3


def test_split_is_seeded_and_disjoint():
    a = data.load("synthetic-mnist", "unused", data_seed=3)
    b = data.load("synthetic-mnist", "unused", data_seed=3)
    assert torch.equal(a.val[0], b.val[0]) and torch.equal(a.train[1], b.train[1])
    c = data.load("synthetic-mnist", "unused", data_seed=4)
    assert not torch.equal(a.val[0], c.val[0])
    sub = data.load("synthetic-mnist", "unused", train_subset=100)
    assert len(sub.train[1]) == 100


def test_synthetic_is_learnable_but_not_trivial():
    s = data.load("synthetic-mnist", "unused")
    x, y = s.train
    # nearest class mean on raw pixels: well above chance, well below perfect
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    xv, yv = s.test
    pred = torch.cdist(xv.flatten(1), means.flatten(1)).argmin(1)
    acc = (pred == yv).float().mean().item()
    assert 0.3 < acc < 0.99


def test_missing_dataset_names_files_and_place(tmp_path):
    with pytest.raises(ConfigError) as e:
        data.load("mnist", str(tmp_path))
    msg = str(e.value)
    assert "MNIST/raw/train-images-idx3-ubyte" in msg and str(tmp_path) in msg and "MFBENCH_DATA" in msg


def test_unknown_dataset_lists_allowed():
    with pytest.raises(ConfigError, match="allowed: .*cifar10"):
        data.load("imagenet", "x")


def test_batches_cover_every_example_once():
    x = torch.arange(10).float().view(10, 1, 1, 1)
    y = torch.arange(10)
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([yb for _, yb in data.batches(x, y, 3, g)])
    assert sorted(seen.tolist()) == list(range(10))
    assert [len(yb) for _, yb in data.batches(x, y, 4)] == [4, 4, 2]


def test_augment_crops_and_flips_on_device():
    x = torch.arange(2 * 3 * 8 * 8).float().view(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = data.augment(x, g, pad=2)
    assert out.shape == x.shape
    outs = torch.stack([data.augment(x, torch.Generator().manual_seed(s), pad=2) for s in range(20)])
    assert (outs != x).any(), "twenty seeds never changed the batch"
    assert torch.equal(data.augment(x, torch.Generator().manual_seed(5), pad=2),
                       data.augment(x, torch.Generator().manual_seed(5), pad=2))


def test_real_mnist_loads(data_dir):
    s = data.load("mnist", data_dir)
    assert len(s.train[1]) + len(s.val[1]) == 60000 and len(s.test[1]) == 10000
    assert s.train[0].shape[1:] == (1, 28, 28)
