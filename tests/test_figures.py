"""What every figure keeps to (mfbench.plots): intervals clipped to the valid range, n shown,
synthetic results marked beside published values, no meaningless memory ratios; and the
report's rendering of result tables."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mfbench.config import ConfigError
from mfbench.experiments import tables
from mfbench.plots import SYNTHETIC, mark_synthetic, n_label, yerr
from mfbench.plots.memory import _ratio_text


def test_interval_is_clipped_to_the_valid_range():
    # accuracy 99 % with a t-CI of 97..101 %: the bar stops at 100; a missing bound draws nothing
    err = yerr([99.0, 50.0, 60.0], [97.0, -5.0, math.nan], [101.0, 70.0, math.nan], 0, 100)
    np.testing.assert_allclose(err, [[2.0, 50.0, 0.0], [1.0, 20.0, 0.0]])
    assert (err >= 0).all()


def test_n_label_names_the_range_of_runs():
    assert n_label([3, 3, 3]) == "n = 3 seeds"
    assert n_label([1]) == "n = 1 seed"
    assert n_label([2, 3, math.nan]) == "n = 2-3 seeds"
    assert n_label([20], "call") == "n = 20 calls"


@pytest.mark.parametrize("datasets,marked", [(["synthetic-mnist"], True), (["mnist", "synthetic-cifar10"], True),
                                             (["mnist", "cifar10"], False)])
def test_synthetic_results_are_marked(datasets, marked):
    fig, ax = plt.subplots()
    mark_synthetic(ax, datasets)
    assert any(t.get_text() == SYNTHETIC for t in ax.texts) == marked
    plt.close(fig)


def _slopes(bp, mf, metric="held_activation_peak_bytes"):
    """A slopes table (as `mfbench memory-slopes` writes) for two fits given as (slope, ci_low, ci_high)."""
    rows = [dict(algorithm=a, metric=metric, unit="MB/layer", slope=s, stderr=(hi - lo) / 4, ci95_low=lo,
                 ci95_high=hi, published=math.nan, compared=False) for a, (s, lo, hi) in (("bp", bp), ("mf", mf))]
    r = bp[0] / mf[0] if mf[0] else math.inf
    rows.append(dict(algorithm="bp/mf", metric=metric, unit="ratio", slope=r, stderr=1.0, ci95_low=r - 2,
                     ci95_high=r + 2, published=12.6, compared=False))
    return pd.DataFrame(rows)


def test_memory_ratio_shown_only_when_both_slopes_are_clearly_positive():
    clean = _ratio_text(_slopes((240, 239, 241), (20, 15, 25)), "held_activation_peak_bytes")
    assert clean.startswith("BP/MF slope ratio: 12.0 (95% CI 10.0-14.0)")
    # a negative RSS slope (the allocator kept freed memory): no ratio, and the panel says why
    neg = _ratio_text(_slopes((3.0, 1.0, 5.0), (-0.2, -0.5, 0.1), "peak_rss_bytes"), "peak_rss_bytes")
    assert "no BP/MF ratio" in neg and "-15" not in neg and "RSS keeps memory" in neg
    assert "no BP/MF ratio" in _ratio_text(_slopes((240, 239, 241), (2.8, -0.9, 6.6)), "x")
    flat = _ratio_text(_slopes((240, 240, 240), (0.0, 0.0, 0.0)), "held_activation_peak_bytes")
    assert "mf flat" in flat


def test_table_html_renders_every_row(tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame({"dataset": ["mnist", "synthetic-mnist"], "mean": [0.98123456, 0.5], "comparable": ["yes", ""]}
                 ).to_csv(csv, index=False)
    out = tmp_path / "t.html"
    tables.main([str(csv)], [str(out)])
    page = out.read_text()
    assert page.count("<tr") == 3 and "0.9812" in page and "synthetic-mnist" in page and "nan" not in page
    with pytest.raises(ConfigError, match="one --out per table"):
        tables.main([str(csv), str(csv)], [str(out)])
