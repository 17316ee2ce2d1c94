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
class FeedbackAlignment(LocalLosses):
    name = "fa"
    stem = "fa"
    pred_modes = ("fa", "l-fa", "lg-fa")
    options = {"local": Option("none", LOCAL_WHY, ("none", "local", "greedy"))}

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        feedback_alignment(self)
        self.opt = self.make_optimizer(self.parameters())


@register
class DirectFeedbackAlignment(LocalLosses):
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
            e = (logits.softmax(-1) - F.one_hot(y, self.num_classes).to(logits.dtype)) / len(y)  # dL/dlogits
            delta = [(e @ self.feedback(i)).view_as(h) for i, h in enumerate(s.post)]
        self.opt.zero_grad(set_to_none=True)
        torch.autograd.backward([sum(losses.values()), *s.post], [None, *delta])
        self.opt.step()
        return {k: v.detach() for k, v in losses.items()}
