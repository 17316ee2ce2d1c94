import os

import pytest
import torch

# One intra-op thread: deterministic, and no spin-wait collapse when the cores are shared.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the CLI subprocesses


@pytest.fixture
def data_dir():
    """Real datasets (torchvision layout) or skip: set MFBENCH_DATA to run these tests."""
    d = os.environ.get("MFBENCH_DATA")
    if not d:
        pytest.skip("MFBENCH_DATA is not set: real-data test skipped")
    return d


def trained_beside_a_changed_copy(rule, later, x, y, steps: int, reseed: bool = False):
    """The locality probe: `rule` and a copy of it whose `later(copy)` parameters (everything after
    the first unit) are scrambled, both trained `steps` steps on (x, y). A local rule's first unit
    must come out the same in both. `reseed`: the same random draws (e.g. FG directions) per step."""
    import copy

    other = copy.deepcopy(rule)
    with torch.no_grad():
        for p in later(other):
            p.mul_(-3.0).add_(0.5)
    for step in range(steps):
        for r in (rule, other):
            if reseed:
                torch.manual_seed(step)
            r.train_step(x, y, "all")
    return rule, other


def small_cfg(**kw):
    from mfbench.config import RunConfig

    base = dict(dataset="synthetic-mnist", depth=2, width=32, epochs=1, batch_size=64, train_subset=512,
                device="cpu", channels=[4, 8])
    base.update(kw)
    return RunConfig.from_dict(base)
