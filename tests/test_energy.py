"""NVML power sampling and energy (measure.PowerSampler), on the CPU against a fake NVML."""
import time
from types import SimpleNamespace

import pytest

from mfbench.measure import PowerSampler


class FakeNVML:
    """pynvml's surface that PowerSampler uses. Power in mW as a function of the sampler's clock."""

    NVML_CLOCK_SM = 1

    def __init__(self, power_w=None, util=70, sm=1800, fail_init=False):
        self.power_w, self.util, self.sm, self.fail_init = power_w, util, sm, fail_init
        self.reads = []

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"gpu{i}"

    def nvmlDeviceGetPowerUsage(self, h):
        if self.power_w is None:
            raise RuntimeError("NVMLError_NotSupported")  # a device that does not report power
        t = time.monotonic()
        self.reads.append(t)
        return int(round(1000 * self.power_w(t)))

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=self.util, memory=10)

    def nvmlDeviceGetClockInfo(self, h, which):
        assert which == self.NVML_CLOCK_SM
        return self.sm


def test_samples_at_the_rate_over_the_window_only_and_integrates_by_trapezoid():
    t0 = time.monotonic()
    nv = FakeNVML(power_w=lambda t: 100.0 + 50.0 * (t - t0))  # a ramp: the trapezoid rule is exact on it
    s = PowerSampler(hz=50, nvml=nv)
    time.sleep(0.05)  # before the window: not sampled
    with s:
        start = time.monotonic()
        time.sleep(0.4)
        end = time.monotonic()
    time.sleep(0.05)
    n = len(nv.reads)
    assert nv.reads[0] >= start - 0.01 and nv.reads[-1] <= end + 0.05 and len(nv.reads) == n  # the window only
    assert 12 <= s.metrics["power_samples"] <= 24  # 50 Hz over 0.4 s, plus the two ends; a loaded CI machine lags
    ts = [x[0] for x in s.samples]
    exact = sum((b - a) * (100 + 50 * (a - t0) + 100 + 50 * (b - t0)) / 2 for a, b in zip(ts, ts[1:]))
    analytic = 100 * (ts[-1] - ts[0]) + 25 * ((ts[-1] - t0) ** 2 - (ts[0] - t0) ** 2)
    assert s.metrics["energy_joules"] == pytest.approx(exact, rel=1e-3) == pytest.approx(analytic, rel=1e-3)
    assert s.metrics["mean_power_watts"] == pytest.approx(analytic / (ts[-1] - ts[0]), rel=1e-3)
    assert (s.metrics["gpu_util_percent"], s.metrics["sm_clock_mhz"]) == (70, 1800)


def test_integration_of_given_samples():
    m = PowerSampler.summarize([(0.0, 100.0, 50, 1000), (0.2, 200.0, 100, 2000), (0.6, 200.0, 90, 1500)])
    assert m["energy_joules"] == pytest.approx(0.2 * 150 + 0.4 * 200)
    assert m["mean_power_watts"] == pytest.approx((30 + 80) / 0.6)
    assert m["gpu_util_percent"] == pytest.approx(80) and m["power_samples"] == 3
    gap = PowerSampler.summarize([(0.0, 100.0, 50, 1000), (0.2, None, 50, 1000), (0.4, 100.0, 50, 1000)])
    assert "energy_joules" not in gap  # a missing reading: no energy claimed from a partial trace


def test_a_device_without_power_reports_no_energy_but_keeps_utilisation():
    with PowerSampler(hz=50, nvml=FakeNVML(power_w=None)) as s:
        time.sleep(0.05)
    assert "energy_joules" not in s.metrics and "mean_power_watts" not in s.metrics
    assert s.metrics["gpu_util_percent"] == 70 and s.metrics["power_samples"] >= 2


def test_no_nvml_samples_nothing():
    with PowerSampler(nvml=FakeNVML(fail_init=True)) as s:
        pass
    assert s.metrics == {} and s.samples == []


def test_the_thread_stops_with_the_window():
    nv = FakeNVML(power_w=lambda t: 50.0)
    with PowerSampler(hz=100, nvml=nv) as s:
        time.sleep(0.05)
    n = len(nv.reads)
    time.sleep(0.1)
    assert len(nv.reads) == n and not s._thread.is_alive()
