"""Fault handling around the runner, kept out of its loop: checks made before training starts,
divergence detection, damaged checkpoints.

Every failure here is one line (a ConfigError subclass: the CLI prints it and exits 2) or a
recorded outcome (a diverged run is a result, not an error: see `DIVERGED`).
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable

import torch

from mfbench.config import ConfigError, RunConfig

# A run whose loss (or weights) became non-finite stops there and is recorded, not failed:
# metadata "status": "diverged", and one tidy row metric=DIVERGED, value=1 at that epoch, so
# aggregation (mfbench.aggregate.split_diverged) leaves it out and says so.
DIVERGED = "diverged"


class ResourceError(ConfigError):
    """A run this machine cannot hold (memory): refused before anything is allocated."""


def _available_bytes(device: str) -> tuple[int, str]:
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return free, "free GPU memory"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical RAM"


def parameter_bytes(cfg: RunConfig, in_shape: tuple[int, int, int], num_classes: int) -> int:
    """Bytes the rule's parameters, gradients and optimiser state take: the model is built on
    the meta device (no memory), so a width of 10^7 is measured, not allocated."""
    from mfbench import algorithms, models

    with torch.device("meta"):
        model = models.build(cfg.arch, in_shape, depth=cfg.depth, width=cfg.width, channels=cfg.channels)
        rule = algorithms.build(model, num_classes, cfg)
    params = sum(p.numel() * p.element_size() for p in rule.parameters())
    buffers = sum(b.numel() * b.element_size() for b in rule.buffers())
    copies = 4 if cfg.optimizer in ("adam", "adamw") else 3  # weights, grads, 2 Adam moments (SGD: 1 momentum)
    return params * copies + buffers


def check_memory(cfg: RunConfig, device: str) -> None:
    """Refuse a model whose parameters alone cannot fit, naming the estimate and what is free."""
    from mfbench.data import get_spec

    spec = get_spec(cfg.dataset)
    need = parameter_bytes(cfg, spec.shape, spec.num_classes)
    have, what = _available_bytes(device)
    if need > have:
        raise ResourceError(f"this model needs about {need / 2**30:.1f} GiB for parameters, gradients and optimiser "
                            f"state ({cfg.arch} depth={cfg.depth} width={cfg.width}) but only {have / 2**30:.1f} GiB "
                            f"of {what} is left on {device}; reduce width/depth/channels")


def non_finite(losses: dict[str, torch.Tensor], rule: torch.nn.Module) -> str | None:
    """Why this epoch diverged (a non-finite loss or weight), or None. One host sync."""
    checks = [torch.isfinite(v).all() for v in losses.values()]
    checks += [torch.isfinite(p).all() for p in rule.parameters()]
    if not checks or bool(torch.stack(checks).all()):
        return None
    bad = {k: v.item() for k, v in losses.items() if not math.isfinite(v.item())}
    return ", ".join(f"{k}={v}" for k, v in bad.items()) or "non-finite weights"


def set_aside(path: str, why: str, log: Callable[[str], None]) -> str:
    """Rename a damaged file out of the way (never delete: it may be evidence) and say so."""
    dest = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    n = 1
    while os.path.exists(dest):
        dest = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{n}"
        n += 1
    os.replace(path, dest)
    log(f"checkpoint {path} is damaged ({why}); set aside as {os.path.basename(dest)}; starting over")
    return dest


CHECKPOINT_KEYS = {"config", "rule", "generator", "torch_rng", "rows", "epochs_done"}


def read_checkpoint(path: str, device: str, log: Callable[[str], None]) -> dict[str, Any] | None:
    """The checkpoint's contents, or None (none there, or damaged: then set aside)."""
    if not os.path.exists(path):
        return None
    try:
        st = torch.load(path, map_location=device, weights_only=False)
        missing = CHECKPOINT_KEYS - set(st) if isinstance(st, dict) else CHECKPOINT_KEYS
        if missing:
            raise ValueError(f"missing {sorted(missing)}")
    except Exception as e:  # truncated, empty, not a torch file, other pickles: all unusable the same way
        set_aside(path, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else 'unreadable'}", log)
        return None
    return st


def guarded(companions: Callable[[str], list[str]]):
    """Decorate the runner: before any data is loaded, check `out` can be written and the model
    fits; then hold `out`'s lock while it runs and clear temp files killed writes left behind."""
    import functools

    from mfbench import files

    def deco(train_fn):
        @functools.wraps(train_fn)
        def wrapper(cfg: RunConfig, out: str, **kw):
            files.check_writable(out)
            check_memory(cfg, cfg.resolved_device())
            with files.exclusive(out):
                files.remove_stale_tmp(out, *companions(out), all_of_them=True)  # we hold the lock
                return train_fn(cfg, out, **kw)

        return wrapper

    return deco
