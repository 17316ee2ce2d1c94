"""Scalable Forward-Forward (Krutsylo, arXiv 2501.03176).

Every unit (a block of the stack, or with granularity `layer` every conv layer) has an
auxiliary conv with one output channel per class; class c's goodness is the mean squared
activation of channel c, and the unit's loss is cross-entropy over the goodness vector
(true class positive, all others negative; one forward pass, no label in the input).
A block trains on its own loss the moment its forward pass is done (its own optimizer,
backprop inside the block only: the paper's "hybrid"); its output is normalised and
detached before the next block, so no gradient crosses a block boundary and no block's
activations outlive its step.

Granularity `layer` makes every conv layer a unit (pure layer-wise FF): forward pre-hooks
on the block's inner conv layers (`LayerStack.cuts`) take their input as that layer's
output for an aux loss and pass it on normalised and detached; a residual path stays
inside the unit that adds it.

Prediction: `avg`, every unit's goodness vector averaged (the paper's vote), or `last`,
the last unit's alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms.base import LearningRule, Option, register
from mfbench.errors import ConfigError


@register
class ScalableFF(LearningRule):
    name = "sff"
    pred_modes = ("avg", "last")
    options = {
        "granularity": Option("block", "block: backprop inside each block, none across (the paper's hybrid); layer: "
                                       "every conv layer is its own unit (pure layer-wise FF)", ("block", "layer")),
        "aux_kernel": Option(1, "kernel size of the auxiliary conv (odd); the author: 1x1 'or slightly larger'"),
        "loss": Option("ce", "ce: cross-entropy over the goodness vector (author's page); lse_margin: "
                             "softplus(logsumexp of the wrong classes' goodness - the true class's + margin), the "
                             "'log-sum-exp margin' third parties describe: equal to ce at margin 0",
                       ("ce", "lse_margin")),
        "margin": Option(1.0, "margin of the lse_margin loss (goodness units); unused by ce"),
        "norm": Option("layer", "each unit's output is layer-normalised (over C,H,W, no affine) before the next "
                                "unit (author's page), so only its pattern, not its goodness, is passed on; none = off",
                       ("layer", "none")),
        "vote": Option("goodness", "how `avg` combines the units: the mean of their goodness vectors (the paper's "
                                   "'averaged goodness votes'), or the mean of their softmax probabilities",
                       ("goodness", "softmax")),
    }

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        o = self.opts
        if len(model.out_shapes[0]) != 3:
            raise ConfigError(f"algorithm 'sff' needs convolutional blocks (arch cnn, resnet18, mobilenet_v3_small, "
                              f"mobilenet_v3_large), got arch {cfg.arch!r}")
        k = o["aux_kernel"]
        if k < 1 or k % 2 == 0:
            raise ConfigError(f"option sff.aux_kernel={k!r} not allowed; allowed: a positive odd integer (1, 3, 5, ...)")
        if o["margin"] < 0:
            raise ConfigError(f"option sff.margin={o['margin']!r} not allowed; allowed: a number >= 0")
        cuts = model.cuts if o["granularity"] == "layer" else [[] for _ in model.blocks]
        # unit channels per block: each cut conv's input, then the block's output
        chans = [[c.in_channels for c in cs] + [shape[0]] for cs, shape in zip(cuts, model.out_shapes)]
        self.aux = nn.ModuleList(nn.ModuleList(nn.Conv2d(ch, num_classes, k, padding=k // 2) for ch in block)
                                 for block in chans)
        self.block_opts = [self.make_optimizer([*b.parameters(), *a.parameters()])
                           for b, a in zip(model.blocks, self.aux)]
        self._captured: list[torch.Tensor] = []
        self._steps = 0  # training steps so far: part of the prediction memo's key
        self._memo: tuple = ()
        for cs in cuts:
            for conv in cs:
                conv.register_forward_pre_hook(self._cut)

    # --- pieces ---------------------------------------------------------------------------
    def _cut(self, module, args):
        """A layer boundary inside a block: keep the previous layer's output for its own loss and
        hand the next layer a normalised, detached copy."""
        (h,) = args
        self._captured.append(h)
        return (self._pass_on(h),)

    def _pass_on(self, h: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.layer_norm(h, h.shape[1:]) if self.opts["norm"] == "layer" else h.detach()

    @staticmethod
    def goodness(aux: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """(B, classes): mean over positions of each class channel's squared activation."""
        return aux(h).pow(2).mean((2, 3))

    def local_loss(self, g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.opts["loss"] == "ce":
            return F.cross_entropy(g, y)
        true = g.gather(1, y[:, None]).squeeze(1)
        others = g.masked_fill(self.one_hot(y, torch.bool), float("-inf")).logsumexp(1)
        return F.softplus(others - true + self.opts["margin"]).mean()

    def _block(self, i: int, h: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Block i's output and the goodness of each of its units."""
        self._captured = []
        a = self.model.blocks[i](h)
        outs, self._captured = [*self._captured, a], []
        return a, [self.goodness(aux, o) for aux, o in zip(self.aux[i], outs)]

    # --- training ---------------------------------------------------------------------------
    def train_step(self, x, y, phase):
        losses = {}
        h = x
        for i in range(self.n_active):
            a, gs = self._block(i, h)
            units = [self.local_loss(g, y) for g in gs]
            loss = units[0] if len(units) == 1 else torch.stack(units).sum()  # one unit: no copy and sum
            opt = self.block_opts[i]
            opt.zero_grad(set_to_none=True)
            self.backward_from(loss)  # this block's graph only: its input was detached
            opt.step()
            losses[f"loss_block{i}"] = loss.detach()
            h = self._pass_on(a)
        self._steps += 1
        losses["loss"] = torch.stack(list(losses.values())).mean()
        return losses

    # --- prediction -------------------------------------------------------------------------
    @torch.no_grad()
    def unit_goodness(self, x) -> list[torch.Tensor]:
        """Goodness vectors of every unit, in order."""
        out, h = [], x
        for i in range(self.n_active):
            a, gs = self._block(i, h)
            out += gs
            h = self._pass_on(a)
        return out

    @torch.no_grad()
    def predict(self, x, mode):
        # Both modes need the same forward pass; the runner asks for them one after the other on the
        # same batch, so the pass is kept (with x itself, so the key cannot be a recycled tensor's).
        key = (x._version, self._steps, self.n_active, self.training)
        if not self._memo or self._memo[0] is not x or self._memo[1] != key:
            self._memo = (x, key, self.unit_goodness(x))
        gs = self._memo[2]
        if mode == "last":
            return gs[-1]
        if self.opts["vote"] == "softmax":
            gs = [g.softmax(-1) for g in gs]
        return torch.stack(gs).mean(0)
