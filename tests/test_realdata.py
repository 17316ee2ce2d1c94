"""Real MNIST (MFBENCH_DATA): the issue's reference runs, shortened to one epoch for CI."""
import pytest

from mfbench.config import RunConfig
from mfbench.run import train


@pytest.mark.realdata
@pytest.mark.parametrize("algorithm,floor", [("mf", 0.95), ("bp", 0.95)])
def test_mnist_2x1000_one_epoch(tmp_path, data_dir, algorithm, floor):
    # Full-length runs (3 epochs) reach ~0.98 for both rules: see the README's reference numbers.
    cfg = RunConfig.from_dict(dict(algorithm=algorithm, dataset="mnist", data_dir=data_dir, arch="mlp", depth=2,
                                   width=1000, epochs=1, batch_size=128, lr=1e-3, seed=0, device="cpu"))
    df = train(cfg, str(tmp_path / "r.csv"), log=lambda s: None)
    test = df[(df.split == "test") & (df.metric == "accuracy")]
    assert set(test.pred_mode) == ({"ff", "bp"} if algorithm == "mf" else {"bp"})
    assert test.value.min() >= floor, test
