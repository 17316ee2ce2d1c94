"""The one interface every learning rule implements.

The runner only ever calls `phases`, `begin_phase`, `train_step`, `predict_all`,
`pred_modes`, `state` and `load_state`; it never branches on a rule's name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from mfbench.errors import ConfigError

RULES: dict[str, type["LearningRule"]] = {}


def optimizer_for(cfg, params: list) -> torch.optim.Optimizer:
    """The run's optimizer over `params`. Fused kernels (one launch updates every tensor) on CUDA
    when the run declares them; the CPU keeps torch's default. Rules are built on the CPU and
    moved, and torch accepts fused=True for CPU tensors too, so the flag can be set before the move."""
    kw = {"fused": True} if cfg.fused_optimizer and cfg.resolved_device() == "cuda" else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **kw)


def register(cls: type["LearningRule"]) -> type["LearningRule"]:
    RULES[cls.name] = cls
    return cls


@dataclass(frozen=True)
class Option:
    """A rule-specific setting, usually one the paper leaves open: default + why."""

    default: Any
    why: str
    choices: tuple | None = None


class LearningRule(nn.Module):
    name: ClassVar[str]
    pred_modes: ClassVar[tuple[str, ...]]
    schedules: ClassVar[tuple[str, ...]] = ("simultaneous",)
    options: ClassVar[dict[str, Option]] = {}
    # Option values under which a training step allocates memory as the published algorithm
    # does; memory experiments apply them unless their spec sets the option itself.
    memory_options: ClassVar[dict[str, Any]] = {}
    metric_units: ClassVar[dict[str, str]] = {}  # train_step keys that are not losses in nats, e.g. a cosine
    stackable: ClassVar[bool] = False  # has a stacked step (seed_stack > 1), at least for some configs
    method_label: str = ""  # pred_mode of the run's training rows: set where options pick one method of a family

    def __init__(self, model, num_classes: int, cfg):
        super().__init__()
        if cfg.schedule not in self.schedules:
            raise ConfigError(f"algorithm {self.name!r} does not support schedule {cfg.schedule!r}; "
                              f"allowed: {', '.join(self.schedules)}")
        self.model = model
        self.num_classes = num_classes
        self.cfg = cfg
        self.opts = self.resolve_options(cfg.options)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.n_active = len(model.blocks)  # layers in use: all, or those grown so far (greedy)
        self.phase = "all"

    # --- options -----------------------------------------------------------------
    @classmethod
    def resolve_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(cls.options))
        if unknown:
            allowed = ", ".join(sorted(cls.options)) or "(none)"
            raise ConfigError(f"unknown option(s) {unknown} for algorithm {cls.name!r}; allowed: {allowed}")
        out = {k: o.default for k, o in cls.options.items()}
        for k, v in given.items():
            o = cls.options[k]
            if o.choices is not None and v not in o.choices:
                raise ConfigError(f"option {cls.name}.{k}={v!r} not allowed; allowed: {', '.join(map(str, o.choices))}")
            if o.choices is None and o.default is not None and not isinstance(v, type(o.default)) \
                    and not (isinstance(o.default, float) and isinstance(v, int)):
                raise ConfigError(f"option {cls.name}.{k} must be {type(o.default).__name__}, got {v!r}")
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"option {cls.name}.{k} must be a finite number, got {v!r}")
            out[k] = v
        return out

    # --- training ------------------------------------------------------------------
    def phases(self) -> list[str]:
        """Training phases run in order, `epochs` epochs each: one phase `all`, or for
        greedy schedules one phase per layer (`layer<i>`)."""
        if self.cfg.schedule == "greedy":
            return [f"layer{i}" for i in range(len(self.model.blocks))]
        return ["all"]

    def begin_phase(self, phase: str) -> None:
        """Called before each phase's first epoch (and again on resume). Greedy: the
        network grown so far is what trains and predicts."""
        self.phase = phase
        self.n_active = len(self.model.blocks) if phase == "all" else int(phase.removeprefix("layer")) + 1

    def train(self, mode: bool = True) -> "LearningRule":
        """Train mode, except for the layers the current phase does not train (greedy: the earlier,
        frozen ones): they stay in eval mode, so their BatchNorm uses and keeps its running statistics
        instead of drifting with every later layer's batches."""
        super().train(mode)
        if mode:
            for b in self.model.blocks[:self.first_trained(self.phase)]:
                b.eval()
        return self

    def first_trained(self, phase: str) -> int:
        """Index of the first layer a step of `phase` trains (greedy: only the newest)."""
        return 0 if phase == "all" else self.n_active - 1

    def train_step(self, x: torch.Tensor, y: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        """One batch of learning; returns detached scalar losses (no host sync needed)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        """Class scores (argmax = prediction) for one of `pred_modes`."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scores of every prediction mode. Rules whose modes share a forward pass override
        this to run it once; each mode's scores must equal `predict(x, mode)`."""
        return {m: self.predict(x, m) for m in self.pred_modes}

    # --- helpers for rules -----------------------------------------------------------
    def constant(self, key: tuple, make) -> torch.Tensor:
        """A tensor the step reads but never changes (a backward seed, an averaging matrix), made by
        `make()` once per `key` (put its shape, device and dtype in it): made every step, it would cost
        a launch (a fill) every step. Not a buffer: not saved, and remade on another device."""
        cache = self.__dict__.setdefault("_constants", {})
        t = cache.get(key)
        if t is None:
            t = cache[key] = make()
        return t

    def backward_from(self, loss: torch.Tensor) -> None:
        """`loss.backward()` of a scalar loss with a cached seed: `backward()` fills a fresh ones_like
        every step, one launch each rule would pay for nothing."""
        torch.autograd.backward(loss, self.constant_one(loss))

    def constant_one(self, like: torch.Tensor) -> torch.Tensor:
        """A cached scalar 1 on `like`'s device and dtype: a scalar loss's backward seed."""
        return self.constant(("one", like.device, like.dtype),
                             lambda: torch.ones((), device=like.device, dtype=like.dtype))

    def one_hot(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """`F.one_hot(labels, num_classes).to(dtype)` as a row lookup in a cached identity matrix: one
        launch, where F.one_hot reads the labels' range back to the host (two syncs a call) and then
        fills, scatters and converts."""
        eye = self.constant(("eye", labels.device, dtype),
                            lambda: torch.eye(self.num_classes, device=labels.device, dtype=dtype))
        return eye[labels]

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        opt = optimizer_for(self.cfg, list(params))
        self.optimizers.append(opt)
        return opt

    # --- stacked seeds (algorithms.stacking; run key seed_stack) ------------------------
    @classmethod
    def stack_refusal(cls, cfg) -> str | None:
        """Why k seeds of `cfg` cannot train as one stacked model (None: they can)."""
        return f"algorithm {cls.name!r} has no stacked step"

    def stacked_names(self) -> list[str]:
        """Names of the parameters the stacked step learns, in its order (every trained one)."""
        raise NotImplementedError

    def stacked_buffer_names(self) -> list[str]:
        """Names of per-seed constant buffers the stacked step reads (FA's feedback matrices)."""
        return []

    def stacked_step(self, t: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor,
                     rngs: list[torch.Generator], step) -> dict[str, torch.Tensor]:
        """Every seed's `train_step` maths on its own batch (xs (k, B, ...), ys (k, B)) with the stacked
        tensors `t` (name -> (k, ...)): leaves each parameter's gradient in .grad (the caller steps),
        returns each metric of `train_step` as a (k,) tensor. Seed i draws its random numbers from
        rngs[i] (where its own run draws from the global RNG). `step()` applies the optimizer to the
        gradients so far and clears them, for a step whose later part reads updated weights (FF's
        readout); a parameter steps only when it has a gradient."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {"module": self.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state(self, st: dict[str, Any]) -> None:
        self.load_state_dict(st["module"])
        for o, s in zip(self.optimizers, st["optimizers"], strict=True):
            o.load_state_dict(s)
