"""Backpropagation: the layer stack plus a linear head (after a global average pool on torchvision's
nets, as their own heads do), trained end to end."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms import stacking
from mfbench.algorithms.base import LearningRule, register


@register
class Backprop(LearningRule):
    name = "bp"
    pred_modes = ("bp",)  # the head on the last layer
    stackable = True

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        self.head = nn.Sequential(model.readout, nn.Linear(model.readout_features, num_classes))
        self.opt = self.make_optimizer(self.parameters())

    def train_step(self, x, y, phase):
        loss = F.cross_entropy(self.head(self.model(x)), y)
        self.opt.zero_grad(set_to_none=True)
        self.backward_from(loss)
        self.opt.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def predict(self, x, mode):
        return self.head(self.model(x))

    @classmethod
    def stack_refusal(cls, cfg):
        return stacking.mlp_refusal(cfg)

    def stacked_names(self):
        return [n for pair in stacking.hidden_names(self) for n in pair] + ["head.1.weight", "head.1.bias"]

    def stacked_step(self, t, xs, ys, rngs, step):
        h = xs.flatten(2)
        for w, b in stacking.hidden_names(self):
            h = F.relu(stacking.linear(h, t[w], t[b]))
        loss = stacking.cross_entropy(stacking.linear(h, t["head.1.weight"], t["head.1.bias"]), ys)
        loss.sum().backward()  # seed i's parameters receive seed i's gradient alone
        return {"loss": loss.detach()}
