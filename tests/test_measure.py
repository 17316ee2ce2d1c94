"""The measurement module: timers, peak memory, held activation bytes."""
import torch

from mfbench.aggregate import order_stats
from mfbench.measure import PeakRSS, SavedTensorMeter, Timer, current_rss_bytes, time_repeats


def test_peak_rss_sees_a_transient_allocation():
    base = current_rss_bytes()
    with PeakRSS() as p:
        t = torch.ones(50_000_000)  # 200 MB, touched, then freed inside the region
        del t
    assert p.peak - base > 150e6
    with PeakRSS() as q:  # a new region forgets the old peak
        pass
    assert q.peak < p.peak - 150e6


def test_timer_and_repeats_on_cpu():
    with Timer("cpu") as t:
        sum(range(100_000))
    assert t.seconds > 0
    xs = time_repeats(lambda: sum(range(10_000)), "cpu", warmup=1, repeats=7)
    s = order_stats(xs)
    assert len(xs) == 7 and s["min"] <= s["median"] <= s["p90"] <= s["max"]


def test_saved_tensor_meter_counts_storage_once_and_releases():
    w = torch.nn.Parameter(torch.randn(100, 100))
    meter = SavedTensorMeter([w])
    with meter.track():
        x = torch.randn(32, 100, requires_grad=True)
        h = (x @ w).relu()   # saves x (matmul) and h (relu); w is a parameter: excluded
        loss = (h * h).sum()  # saves h again: same storage, counted once
        held = meter.current
        loss.backward()
    assert held == 2 * 32 * 100 * 4
    assert meter.peak == held and meter.current == 0
