"""Stacked seeds (run key `seed_stack: k`): the k seeds of one MLP cell trained as one model.

Every parameter a rule learns is stacked along a leading seed dimension, each slice copied from
that seed's own rule (built from its seed, so initialised exactly as its separate run); the
rule's `stacked_step` runs every seed's step on its own batch with batched matmuls, per-seed
losses summed, one backward, one optimizer step. Adam, AdamW and SGD act element-wise, and a
seed's loss depends only on its own slice, so this is k separate trainings computed by the
kernels of one (float rounding apart: a batched GEMM sums in its own order).

Evaluation, checkpoints and CSVs stay with each seed's own rule: `to_rules` writes the slices
(and the optimizer state) back into them, in the format a separate run has.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mfbench.algorithms.base import LearningRule, optimizer_for


class _Linear(torch.autograd.Function):
    """Each seed's Linear, whose backward gives the weight's gradient contiguous (k, out, in): autograd's
    own (of h @ w^T) comes transposed, and accumulating it copies every weight once more per step."""

    @staticmethod
    def forward(ctx, h, w, b):
        ctx.save_for_backward(h, w)
        ctx.has_bias = b is not None
        return torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        h, w = ctx.saved_tensors
        gh = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.transpose(1, 2), h) if ctx.needs_input_grad[1] else None
        return gh, gw, g.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None


def linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Each seed's Linear: h (k, B, in), w (k, out, in), b (k, out) -> (k, B, out)."""
    if not torch.is_grad_enabled() or not (w.requires_grad or h.requires_grad):
        return torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
    return _Linear.apply(h, w, b)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each seed's mean cross-entropy over its batch: logits (k, B, C), y (k, B) -> (k,)."""
    k, b, c = logits.shape
    return F.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none").view(k, b).mean(1)


def hidden_names(rule: LearningRule) -> list[tuple[str, str]]:
    """(weight, bias) names of the MLP's Linear layers, in order (each block: [Flatten,] Linear, ReLU)."""
    return [(f"model.blocks.{i}.{len(b) - 2}.weight", f"model.blocks.{i}.{len(b) - 2}.bias")
            for i, b in enumerate(rule.model.blocks)]


def mlp_refusal(cfg) -> str | None:
    """Why `cfg` cannot stack whatever its rule (None: it can)."""
    if cfg.arch != "mlp":
        return f"arch {cfg.arch!r} cannot stack (MLPs only)"
    if cfg.schedule != "simultaneous":
        return f"schedule {cfg.schedule!r} cannot stack (simultaneous only)"
    for key, off in (("augment", False), ("compile", "off"), ("precision", "fp32")):
        if getattr(cfg, key) != off:
            return f"{key}={getattr(cfg, key)!r} cannot stack (allowed: {off!r})"
    return None


class Stack:
    """The stacked parameters (and buffers) of k rules of one config, and one optimizer over them."""

    def __init__(self, rules: list[LearningRule], rngs: list[torch.Generator] | None = None):
        self.rules = rules
        self.rngs = rngs or [torch.Generator(device=next(r.parameters()).device) for r in rules]  # seed i's draws
        self.names = rules[0].stacked_names()
        self.buffer_names = rules[0].stacked_buffer_names()
        with torch.no_grad():
            self.params = {n: torch.stack([r.get_parameter(n) for r in rules]).requires_grad_() for n in self.names}
            self.buffers = {n: torch.stack([r.get_buffer(n) for r in rules]) for n in self.buffer_names}
        self.tensors = {**self.params, **self.buffers}
        self.opt = optimizer_for(rules[0].cfg, list(self.params.values()))
        for n, p in self.params.items():  # each seed's optimizer state (a resumed run has some), stacked
            states = [self._opt_state(r, n) for r in rules]
            if all(states):
                self.opt.state[p] = {key: torch.stack([s[key] for s in states]) if _per_param(v, rules[0].get_parameter(n))
                                     else v.clone() for key, v in states[0].items()}

    @staticmethod
    def _opt_state(rule: LearningRule, name: str) -> dict:
        p = rule.get_parameter(name)
        return next((o.state[p] for o in rule.optimizers if p in o.state), {})

    def step(self, xs: torch.Tensor, ys: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training step of every seed: xs (k, B, ...), ys (k, B); metrics as (k,) tensors."""
        self.opt.zero_grad(set_to_none=True)
        metrics = self.rules[0].stacked_step(self.tensors, xs, ys, self.rngs, self._step)
        self.opt.step()
        return metrics

    def _step(self) -> None:
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def to_rules(self) -> None:
        """Each seed's slice into its own rule: parameters and optimizer state, as its separate run holds them."""
        for n, p in self.params.items():
            st = self.opt.state.get(p, {})
            for i, r in enumerate(self.rules):
                mine = r.get_parameter(n)
                mine.copy_(p[i])
                opt = next(o for o in r.optimizers if any(mine is q for g in o.param_groups for q in g["params"]))
                if st:
                    opt.state[mine] = {key: v[i].clone() if _per_param(v, p[i], stacked=True) else v.clone()
                                       for key, v in st.items()}


def _per_param(v, p: torch.Tensor, stacked: bool = False) -> bool:
    """An optimizer state entry with one value per parameter element (exp_avg, momentum), not a
    shared scalar (Adam's step)."""
    if not isinstance(v, torch.Tensor):
        return False
    return v.shape[1:] == p.shape if stacked else v.shape == p.shape
