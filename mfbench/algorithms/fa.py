"""Feedback alignment (Lillicrap et al. 2016) and direct feedback alignment (Nokland 2016).

fa: backprop's graph with every linear, grouped-linear and conv layer (heads included) sending
its error back through a fixed random matrix B of its weight's shape instead of its weight; the
weight's own gradient is the usual outer product. Local losses (L-FA, LG-FA) come from
LocalLosses. dfa: every activation site (hidden ReLU) receives the output error e = dL/dlogits
through its own fixed random matrix, delta = (e B) * relu'(a); the reverse graph is cut at every
site, so no error travels between layers. Feedback matrices are buffers: drawn once at
construction from the run seed, saved in checkpoints, never trained.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms import stacking
from mfbench.algorithms.base import Option, register
from mfbench.algorithms.local import LOCAL_WHY, LocalLosses
from mfbench.models.localmixer import GroupLinear
from mfbench.sites import Session, sites


class _FALinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, gy):
        x, fb = ctx.saved_tensors
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = gy @ fb if ctx.needs_input_grad[0] else None  # backprop would use the weight here
        return gx, g2.T @ x.reshape(-1, x.shape[-1]), g2.sum(0) if ctx.has_bias else None, None


class _FAConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, feedback, stride, padding, dilation, groups):
        ctx.save_for_backward(x, feedback)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.w_shape, ctx.has_bias = weight.shape, bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, gy):
        x, fb = ctx.saved_tensors
        gx = torch.nn.grad.conv2d_input(x.shape, fb, gy, *ctx.conf) if ctx.needs_input_grad[0] else None
        gw = torch.nn.grad.conv2d_weight(x, ctx.w_shape, gy, *ctx.conf)
        return gx, gw, gy.sum((0, 2, 3)) if ctx.has_bias else None, None, None, None, None, None


class _FAGroupLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        return torch.einsum("...gc,gcd->...gd", x, weight) + bias

    @staticmethod
    def backward(ctx, gy):
        x, fb = ctx.saved_tensors
        g, c, d = fb.shape
        gx = torch.einsum("...gd,gcd->...gc", gy, fb) if ctx.needs_input_grad[0] else None
        g2 = gy.reshape(-1, g, d)
        return gx, torch.einsum("ngc,ngd->gcd", x.reshape(-1, g, c), g2), g2.sum(0), None


class FALinear(nn.Linear):
    def forward(self, x):
        return _FALinear.apply(x, self.weight, self.bias, self.feedback)


class FAConv2d(nn.Conv2d):
    def forward(self, x):
        return _FAConv2d.apply(x, self.weight, self.bias, self.feedback, self.stride, self.padding, self.dilation,
                               self.groups)


class FAGroupLinear(GroupLinear):
    def forward(self, x):
        return _FAGroupLinear.apply(x, self.weight, self.bias, self.feedback)


class _StackedFALinear(torch.autograd.Function):
    """_FALinear of k seeds at once: x (k, B, in), weight and feedback (k, out, in), bias (k, out)."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        return stacking.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, gy):
        x, fb = ctx.saved_tensors
        gx = torch.bmm(gy, fb) if ctx.needs_input_grad[0] else None
        return gx, torch.bmm(gy.transpose(1, 2), x), gy.sum(1), None


class _StackedLocal:
    """The stacked step's shared part for FA and DFA (local = none): names, heads as probes."""

    stackable = True

    @classmethod
    def stack_refusal(cls, cfg):
        if cls.resolve_options(cfg.options).get("local", "none") != "none":
            return f"{cls.name} with local losses cannot stack (local: none only)"
        return stacking.mlp_refusal(cfg)

    def stacked_names(self):
        heads = ["head.weight", "head.bias"] + [f"local_heads.{i}.{p}" for i in range(len(self.local_heads))
                                                for p in ("weight", "bias")]
        return [n for pair in stacking.hidden_names(self) for n in pair] + heads

    def probe_losses(self, t, outs, ys) -> dict[str, torch.Tensor]:
        """The local heads' losses on detached block outputs (probes: they never shape the network)."""
        return {f"loss_block{i}": stacking.cross_entropy(
            stacking.linear(o.detach(), t[f"local_heads.{i}.weight"], t[f"local_heads.{i}.bias"]), ys)
            for i, o in enumerate(outs)}


FA_CLASSES = {nn.Linear: FALinear, nn.Conv2d: FAConv2d, GroupLinear: FAGroupLinear}


def feedback_alignment(net: nn.Module) -> None:
    """Turn every linear-like layer of `net` into its FA twin (same parameters) with a fixed random
    feedback matrix drawn like the layer's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    for m in list(net.modules()):
        cls = FA_CLASSES.get(type(m))
        if cls is None:
            continue
        w = m.weight
        fan_in = w.shape[1] if isinstance(m, GroupLinear) else w[0].numel()
        bound = 1 / math.sqrt(fan_in)
        m.__class__ = cls  # a subclass adding only `forward`: parameters and init stay as they are
        m.register_buffer("feedback", torch.empty_like(w).uniform_(-bound, bound))


@register
class FeedbackAlignment(_StackedLocal, LocalLosses):
    name = "fa"
    stem = "fa"
    pred_modes = ("fa", "l-fa", "lg-fa")
    options = {"local": Option("none", LOCAL_WHY, ("none", "local", "greedy"))}

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        feedback_alignment(self)
        self.opt = self.make_optimizer(self.parameters())

    def stacked_buffer_names(self):
        return [w.replace(".weight", ".feedback") for w, _ in stacking.hidden_names(self)] + ["head.feedback"]

    def stacked_step(self, t, xs, ys, rngs, step):
        h, outs = xs.flatten(2), []
        for w, b in stacking.hidden_names(self):
            h = F.relu(_StackedFALinear.apply(h, t[w], t[b], t[w.replace(".weight", ".feedback")]))
            outs.append(h)
        losses = self.probe_losses(t, outs, ys)
        losses["loss"] = stacking.cross_entropy(
            _StackedFALinear.apply(h, t["head.weight"], t["head.bias"], t["head.feedback"]), ys)
        sum(v.sum() for v in losses.values()).backward()
        return {k: v.detach() for k, v in losses.items()}


@register
class DirectFeedbackAlignment(_StackedLocal, LocalLosses):
    name = "dfa"
    stem = "dfa"
    pred_modes = ("dfa",)

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        for i, shape in enumerate(self.site_shapes):
            bound = 1 / math.sqrt(num_classes)  # as a Linear(classes -> site) would be drawn
            self.register_buffer(f"feedback{i}", torch.empty(num_classes, math.prod(shape)).uniform_(-bound, bound))
        self.opt = self.make_optimizer(self.parameters())

    def feedback(self, i: int) -> torch.Tensor:
        return getattr(self, f"feedback{i}")

    def train_step(self, x, y, phase):
        with sites(self.model, Session(cut=True, reverse_only=True)) as s:
            outs = self.model.activations(x)  # cut at every site: no error flows between layers
        losses, logits = self.head_losses(outs, outs[-1], y)  # heads: their exact gradients
        with torch.no_grad():
            e = (logits.softmax(-1) - self.one_hot(y, logits.dtype)) / len(y)  # dL/dlogits
            delta = [(e @ self.feedback(i)).view_as(h) for i, h in enumerate(s.post)]
        self.opt.zero_grad(set_to_none=True)
        torch.autograd.backward([sum(losses.values()), *s.post], [self.constant_one(logits), *delta])
        self.opt.step()
        return {k: v.detach() for k, v in losses.items()}

    def stacked_buffer_names(self):
        return [f"feedback{i}" for i in range(len(self.site_shapes))]

    def stacked_step(self, t, xs, ys, rngs, step):
        """train_step of every seed, its backward written out: each layer's delta is the output
        error through that layer's fixed matrix, times relu'; heads get their exact gradients."""
        names = stacking.hidden_names(self)
        hs = [xs.flatten(2)]
        with torch.no_grad():
            for w, b in names:
                hs.append(F.relu(stacking.linear(hs[-1], t[w], t[b])))
        with torch.enable_grad():  # the heads' own losses and exact gradients, by autograd
            losses = self.probe_losses(t, hs[1:], ys)
            logits = stacking.linear(hs[-1], t["head.weight"], t["head.bias"])
            losses["loss"] = stacking.cross_entropy(logits, ys)
            sum(v.sum() for v in losses.values()).backward()
        with torch.no_grad():
            e = (logits.softmax(-1) - self.one_hot(ys, logits.dtype)) / ys.shape[1]
            for i, (w, b) in enumerate(names):
                delta = torch.bmm(e, t[f"feedback{i}"]) * (hs[i + 1] > 0)
                t[w].grad, t[b].grad = torch.bmm(delta.transpose(1, 2), hs[i]), delta.sum(1)
        return {k: v.detach() for k, v in losses.items()}
