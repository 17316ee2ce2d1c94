"""MF-joint: Mono-Forward's per-layer readouts and losses with no detach between layers; the ablation
ladder's third rung (BP -> BP-DS -> MF-joint -> MF).

The same network, projections M_i, losses L_i = CE(a_i M_i^T, y), optimiser and prediction modes as
`mf`, but one backward over sum_i L_i through the whole stack: layer i gets gradient from its own loss
and from every later layer's. MF minus this rule is what the detach alone does; this rule minus BP-DS is
what dropping the output head does. Simultaneous only: greedy training freezes earlier layers anyway.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mfbench.algorithms.base import Option, register
from mfbench.algorithms.mf import MonoForward


@register
class MonoForwardJoint(MonoForward):
    name = "mf_joint"
    schedules = ("simultaneous",)
    options = {
        **MonoForward.options,
        "update": Option("batched", "one backward over the summed losses (no detach, so no per-layer step exists); "
                                    "batched computes every G_i in one matmul, joint one by one",
                         ("batched", "joint")),
    }
    stackable = False  # MF's stacked step detaches between layers; this rung must not
    memory_options = {}  # one backward over the whole graph: it holds every layer's activations, as BP does

    def losses(self, x, y) -> dict[str, torch.Tensor]:
        """Every loss of a step, undetached (the locality tests read which parameters each reaches)."""
        out = {}
        if self.input_proj is not None and self.opts["learn_projection"]:
            out["loss_input"] = F.cross_entropy(self.input_proj(x), y)
        acts = self.model.activations(x)  # no detach: the point of this rule
        per_layer = self._layer_losses(acts, self.projections, y)
        out.update({f"loss_layer{i}": v for i, v in enumerate(per_layer)})
        return out

    def train_step(self, x, y, phase):
        parts = self.losses(x, y)
        total = torch.stack(list(parts.values())).sum()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        return {**{k: v.detach() for k, v in parts.items()}, "loss": total.detach() / len(parts)}
