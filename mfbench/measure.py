"""Timing, memory and energy, the same way for every experiment.

- time: CUDA events around the region (after warm-up, synchronised) on GPU,
  `time.perf_counter` on CPU;
- memory: the allocator's peak (tensors only) and NVML process memory (with the
  CUDA context) on GPU; peak RSS (the kernel's high-water mark) on CPU, labelled as such;
- held activations: bytes saved for backward, via autograd's saved-tensor hooks.
  Device-independent and exact, so the depth-scaling claim is testable on a CPU;
- energy: NVML power sampled at 5 Hz in a background thread over the measured window and
  integrated by the trapezoid rule (`PowerSampler`, as the anchor measures it), with GPU
  utilisation and SM clock beside it (a run starved by its input shows low utilisation);
  NVML's total-energy counter difference too, where the GPU has one.
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Callable, Iterable

import torch

from mfbench.aggregate import order_stats as summarize  # noqa: F401  (now in aggregate, torch-free; old name kept)


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Elapsed seconds of a region: `with Timer(dev) as t: ...; t.seconds`."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.cuda = torch.device(device).type == "cuda"
        self.seconds = float("nan")

    def __enter__(self) -> "Timer":
        if self.cuda:
            self._a, self._b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._a.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._b.record()
            self._b.synchronize()
            self.seconds = self._a.elapsed_time(self._b) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._t0


def time_repeats(fn: Callable[[], object], device: torch.device | str, *, warmup: int = 3, repeats: int = 20) -> list[float]:
    """Seconds per call of `fn`, each repeat timed on its own after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        with Timer(device) as t:
            fn()
        out.append(t.seconds)
    return out


# --- memory -------------------------------------------------------------------------
def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _every(interval: float, fn) -> tuple[threading.Event, threading.Thread]:
    """Call `fn` every `interval` seconds in a daemon thread until the returned event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            fn()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return stop, thread


class PeakRSS:
    """Peak resident set size over a region (CPU 'peak memory').

    Linux keeps the peak itself (VmHWM) and resets it on `5 > /proc/self/clear_refs`:
    exact and free. Where that is not allowed, a thread samples RSS every `interval` s.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakRSS":
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            _vm_hwm_bytes()
            return self
        except OSError:
            pass
        self.peak = current_rss_bytes()
        self._stop, self._thread = _every(self.interval, self._sample)
        return self

    def _sample(self) -> None:
        self.peak = max(self.peak, current_rss_bytes())

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            self.peak = _vm_hwm_bytes()
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_bytes())


def nvml_process_bytes(device: torch.device | str) -> int | None:
    """This process's memory on the GPU as NVML sees it (CUDA context included)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        idx = torch.device(device).index or 0
        h = pynvml.nvmlDeviceGetHandleByIndex(idx)
        pid = os.getpid()
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
            if p.pid == pid:
                return int(p.usedGpuMemory or 0)
        return None
    except Exception:  # no driver, no permission, container PID namespace: simply unknown
        return None


def nvml_energy_mj(device: torch.device | str) -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(torch.device(device).index or 0)
        return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
    except Exception:
        return None


# Units of the metrics PeakMemory reports (the rest are bytes).
UNITS = {"energy_joules": "J", "energy_counter_joules": "J", "mean_power_watts": "W",
         "gpu_util_percent": "percent", "sm_clock_mhz": "MHz", "power_samples": "count"}


def _nvml():
    import pynvml

    return pynvml


class PowerSampler:
    """Power, GPU utilisation and SM clock of one GPU sampled every 1/`hz` s by a background thread
    over the `with` window; energy = trapezoid integral of power over time.

    A sample is taken on entering and on leaving, so the integral covers exactly the window (the
    thread fills in between). A device that does not report power (or no NVML at all) yields no
    energy, never a zero; utilisation and clock are kept where they are reported. `nvml`: the pynvml
    module (a fake in tests); `clock`: seconds, monotonic.
    """

    def __init__(self, index: int = 0, hz: float = 5.0, nvml=None, clock: Callable[[], float] = time.monotonic):
        self.index, self.interval, self.clock = index, 1.0 / hz, clock
        self._nvml = nvml
        self.samples: list[tuple[float, float | None, float | None, float | None]] = []  # t, W, util %, MHz
        self.metrics: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    def _read(self, fn, *args):
        try:
            return float(fn(self._h, *args))
        except Exception:  # NVMLError_NotSupported and kin: this quantity is unknown on this device
            return None

    def sample(self) -> None:
        nv = self._nvml
        watts = self._read(nv.nvmlDeviceGetPowerUsage)  # milliwatts
        util = self._read(lambda h: nv.nvmlDeviceGetUtilizationRates(h).gpu)
        sm = self._read(nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_SM)
        self.samples.append((self.clock(), None if watts is None else watts / 1000.0, util, sm))

    def __enter__(self) -> "PowerSampler":
        try:
            self._nvml = self._nvml or _nvml()
            self._nvml.nvmlInit()
            self._h = self._nvml.nvmlDeviceGetHandleByIndex(self.index)
        except Exception:  # no driver, no permission: nothing is sampled
            self._nvml = None
            return self
        self.sample()
        self._stop, self._thread = _every(self.interval, self.sample)
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self.sample()
        self.metrics = self.summarize(self.samples)

    @staticmethod
    def summarize(samples) -> dict[str, float]:
        """Energy (trapezoid over the samples reporting power), mean power, mean utilisation and clock."""
        out: dict[str, float] = {"power_samples": float(len(samples))}
        power = [(t, w) for t, w, _, _ in samples if w is not None]
        if len(power) >= 2 and len(power) == len(samples):  # a gap in the power readings: no energy claimed
            e = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(power, power[1:]))
            out["energy_joules"] = e
            out["mean_power_watts"] = e / (power[-1][0] - power[0][0]) if power[-1][0] > power[0][0] else power[0][1]
        for i, k in ((2, "gpu_util_percent"), (3, "sm_clock_mhz")):
            vals = [s[i] for s in samples if s[i] is not None]
            if vals:
                out[k] = sum(vals) / len(vals)
        return out


class PeakMemory:
    """Peak memory of a region as tidy metrics: {metric: (value, unit)}.

    GPU: `peak_allocated_bytes` (allocator, this process's tensors only; the primary measure),
    `nvml_process_bytes` (with context), and PowerSampler's energy, mean power, utilisation and SM
    clock. CPU: `peak_rss_bytes` (whole process). Units: UNITS (bytes otherwise).
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.metrics: dict[str, float] = {}

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._e0 = nvml_energy_mj(self.device)
            self._power = PowerSampler(self.device.index or 0).__enter__()
        else:
            self._rss = PeakRSS().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.metrics["peak_allocated_bytes"] = float(torch.cuda.max_memory_allocated(self.device))
            nv = nvml_process_bytes(self.device)
            if nv is not None:
                self.metrics["nvml_process_bytes"] = float(nv)
            self._power.__exit__(*exc)
            self.metrics.update(self._power.metrics)  # energy_joules: sampled power, trapezoid (the anchor's)
            e1 = nvml_energy_mj(self.device)
            if self._e0 is not None and e1 is not None:  # the counter, beside it, where the GPU has one
                self.metrics["energy_counter_joules"] = (e1 - self._e0) / 1000.0
        else:
            self._rss.__exit__(*exc)
            self.metrics["peak_rss_bytes"] = float(self._rss.peak)


class SavedTensorMeter:
    """Bytes of tensors autograd holds for backward: current and peak over a region.

    Pack hooks see every tensor saved for backward; a tensor is counted once per
    storage (ops often save the same activation twice) and released when the graph
    drops the saved copy. Parameters are excluded: they are weights, not activations.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self._excluded = {p.untyped_storage().data_ptr() for p in exclude}
        self._refs: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.current -= self._sizes.pop(key)

    def _pack(self, t: torch.Tensor):
        st = t.untyped_storage()
        key = st.data_ptr()
        if key in self._excluded or st.nbytes() == 0:
            return t
        if key not in self._refs:
            self._refs[key] = 0
            self._sizes[key] = st.nbytes()
            self.current += st.nbytes()
            self.peak = max(self.peak, self.current)
        self._refs[key] += 1
        holder = _Held(t)
        weakref.finalize(holder, self._release, key)
        return holder

    @staticmethod
    def _unpack(h):
        return h.t if isinstance(h, _Held) else h

    @contextmanager
    def track(self):
        with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
            yield self


class _Held:
    __slots__ = ("t", "__weakref__")

    def __init__(self, t: torch.Tensor):
        self.t = t
