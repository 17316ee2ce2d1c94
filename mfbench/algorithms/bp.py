"""Backpropagation: the layer stack plus a linear head, trained end to end."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms.base import LearningRule, register


@register
class Backprop(LearningRule):
    name = "bp"
    pred_modes = ("bp",)  # the head on the last layer

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        self.head = nn.Sequential(model.readout, nn.Linear(model.readout_features, num_classes))
        self.opt = self.make_optimizer(self.parameters())

    def train_step(self, x, y, phase):
        loss = F.cross_entropy(self.head(self.model(x)), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def predict(self, x, mode):
        return self.head(self.model(x))
