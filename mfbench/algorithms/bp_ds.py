"""BP with deep supervision (BP-DS): the ablation ladder's second rung (BP -> BP-DS -> MF-joint -> MF).

Backprop with its linear head, plus an MF-style readout at every hidden layer: M_i (classes x features,
no bias, nn.Linear's init as MF's) and CE(a_i M_i^T, y) added to the output loss. Gradients are global:
every layer learns from the output loss and from its own and every later layer's readout loss. Set
beside MF-joint (the same readouts, no output head) and MF (the same readouts, each layer detached),
it separates what the auxiliary losses add from what cutting the gradient between layers adds
(Spyra & Dzwinel's ladder). Prediction: the output head, as BP's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms.base import LearningRule, Option, register


@register
class BackpropDeepSupervision(LearningRule):
    name = "bp_ds"
    pred_modes = ("bp",)  # the output head, as BP's
    options = {
        "aux_weight": Option(1.0, "each readout's CE is added to the output loss at weight 1 (the anchor's ladder: "
                                  "MF's per-layer losses, unweighted, beside BP's)"),
    }

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        self.head = nn.Sequential(model.readout, nn.Linear(model.readout_features, num_classes))
        self.readouts = nn.ModuleList(nn.Sequential(nn.Flatten(), nn.Linear(f, num_classes, bias=False))
                                      for f in model.out_features)
        self.opt = self.make_optimizer(self.parameters())

    def losses(self, x, y) -> dict[str, torch.Tensor]:
        """Every loss of a step, undetached: the output CE and each hidden layer's readout CE."""
        acts = self.model.activations(x)
        out = {"loss_output": F.cross_entropy(self.head(acts[-1]), y)}
        out.update({f"loss_layer{i}": F.cross_entropy(m(a), y) for i, (m, a) in enumerate(zip(self.readouts, acts))})
        return out

    def train_step(self, x, y, phase):
        parts = self.losses(x, y)
        aux = torch.stack([v for k, v in parts.items() if k != "loss_output"]).sum()
        loss = parts["loss_output"] + self.opts["aux_weight"] * aux
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    @torch.no_grad()
    def predict(self, x, mode):
        return self.head(self.model(x))
