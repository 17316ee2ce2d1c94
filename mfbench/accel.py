"""A run's declared speed options (RunConfig keys), applied to its training step.

- precision: `fp32` turns TF32 off for matmuls *and* convolutions (cuDNN allows it for
  convolutions by default, which would quietly train CNNs in TF32 on Ampere and later GPUs);
  `tf32` turns it on for both; `bf16` runs each training step under bfloat16 autocast
  (evaluation stays in fp32).
- compile: `torch.compile` of the step in that mode. `backward()` is a graph break, so the
  forward, the backward and the optimizer step compile separately; `reduce-overhead` replays
  them as CUDA graphs on CUDA (on the CPU it is plain compilation).
- fused_optimizer: applied where optimizers are made (`LearningRule.make_optimizer`).

Memory experiments call `train_step` directly: they measure the eager step.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch


def set_precision(precision: str) -> None:
    """Process-wide TF32 flags as the run declares them (every rule is built through
    `run.build`, which calls this: training, timing and memory jobs alike)."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def training_step(rule, cfg, device: str) -> Callable:
    """`rule.train_step` under the run's declared autocast and compilation."""
    step = rule.train_step
    if cfg.precision == "bf16":
        step = _autocast(step, torch.device(device).type)
    if cfg.compile != "off":
        step = torch.compile(step, mode=None if cfg.compile == "default" else cfg.compile)
    return step


def _autocast(fn: Callable, device_type: str) -> Callable:
    @functools.wraps(fn)
    def step(*args):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return fn(*args)
    return step
