"""Mono-Forward (Gong, Li, Abdulla; arXiv 2501.09238).

Layer i computes a_i = relu(W_i a_{i-1}.detach()) and its goodness G_i = a_i M_i^T
with a projection M_i (classes x features). L_i = CE(G_i, y) updates W_i and M_i at
once, through layer i's own optimizer, before layer i+1 runs: each layer's graph is
freed before the next is built, so no activation outlives its layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms.base import LearningRule, Option, register
from mfbench.config import ConfigError


@register
class MonoForward(LearningRule):
    name = "mf"
    pred_modes = ("ff", "bp")  # ff: sum of G_i over layers; bp: last layer's G only
    schedules = ("simultaneous", "greedy")
    options = {
        "m_init": Option("kaiming_uniform", "paper does not say; nn.Linear's default init, which its PyTorch code most likely kept",
                         ("kaiming_uniform", "normal", "zeros")),
        "input_projection": Option(False, "the paper's algorithm starts projecting at the first hidden layer; an M_0 on raw pixels is an extra",
                                   (False, True)),
        "ff_pred": Option("logits", "paper sums the layers' goodness G_i; softmax(G_i) is the probability-averaging alternative",
                          ("logits", "softmax")),
        "learn_projection": Option(True, "the paper learns M_i with W_i from L_i; false freezes every M_i at its init "
                                         "(a fixed random readout per layer, like a random-projection local loss): "
                                         "the ablation that asks whether learning M matters", (True, False)),
        "cnn_head": Option("flatten", "M attaches to the flattened post-pool map (design default); gap = global average pool first",
                           ("flatten", "gap")),
    }

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        learn = self.opts["learn_projection"]
        if not learn and self.opts["m_init"] == "zeros":
            raise ConfigError("option mf.learn_projection=False with mf.m_init='zeros' leaves every G_i = 0 and no "
                              "gradient for W_i; use m_init kaiming_uniform or normal")
        feats = list(model.out_features)
        if self.opts["cnn_head"] == "gap" and cfg.arch == "cnn":
            feats = [b[0].out_channels for b in model.blocks]
        self.projections = nn.ModuleList(self._projection(f) for f in feats)
        # One optimizer per layer: a layer's step depends on its own loss and state only.
        self.layer_opts = [self.make_optimizer([*b.parameters(), *(m.parameters() if learn else [])])
                           for b, m in zip(model.blocks, self.projections)]
        self.input_proj = None
        if self.opts["input_projection"]:
            d_in = 1
            for s in model.in_shape:
                d_in *= s
            self.input_proj = self._projection(d_in)
            # frozen, an M_0 on the raw input has nothing to learn: it only adds its fixed G_0 to ff-pred
            self.input_opt = self.make_optimizer(self.input_proj.parameters()) if learn else None
        if not learn:
            for p in [*self.projections.parameters(), *(self.input_proj.parameters() if self.input_proj else [])]:
                p.requires_grad_(False)

    def _projection(self, features: int) -> nn.Module:
        lin = nn.Linear(features, self.num_classes, bias=False)
        if self.opts["m_init"] == "normal":
            nn.init.normal_(lin.weight, std=features ** -0.5)
        elif self.opts["m_init"] == "zeros":
            nn.init.zeros_(lin.weight)
        pool = [nn.AdaptiveAvgPool2d(1)] if self.opts["cnn_head"] == "gap" and self.cfg.arch == "cnn" else []
        return nn.Sequential(*pool, nn.Flatten(), lin)

    def train_step(self, x, y, phase):
        losses = {}
        first = self.first_trained(phase)
        if self.input_proj is not None and self.input_opt is not None and first == 0:
            losses["loss_input"] = self._local_step(self.input_proj, self.input_opt, x, y)
        h = x
        if first:
            with torch.no_grad():
                for b in self.model.blocks[:first]:
                    h = b(h)
        for i in range(first, self.n_active):
            a = self.model.blocks[i](h.detach())
            losses[f"loss_layer{i}"] = self._local_step(self.projections[i], self.layer_opts[i], a, y)
            h = a
        losses["loss"] = torch.stack([v for k, v in losses.items()]).mean()
        return losses

    @staticmethod
    def _local_step(proj, opt, a, y) -> torch.Tensor:
        loss = F.cross_entropy(proj(a), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # frees this layer's graph: nothing is held for later layers
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def goodness(self, x) -> list[torch.Tensor]:
        gs = [] if self.input_proj is None else [self.input_proj(x)]
        h = x
        for b, m in zip(self.model.blocks[:self.n_active], self.projections):
            h = b(h)
            gs.append(m(h))
        return gs

    @torch.no_grad()
    def predict(self, x, mode):
        if mode == "bp":  # last layer alone: a plain forward pass plus one projection
            h = x
            for b in self.model.blocks[:self.n_active]:
                h = b(h)
            return self.projections[self.n_active - 1](h)
        gs = self.goodness(x)
        if self.opts["ff_pred"] == "softmax":
            gs = [g.softmax(-1) for g in gs]
        return torch.stack(gs).sum(0)
