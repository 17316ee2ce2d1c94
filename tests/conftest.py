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


def small_cfg(**kw):
    from mfbench.config import RunConfig

    base = dict(dataset="synthetic-mnist", depth=2, width=32, epochs=1, batch_size=64, train_subset=512,
                device="cpu", channels=[4, 8])
    base.update(kw)
    return RunConfig.from_dict(base)
