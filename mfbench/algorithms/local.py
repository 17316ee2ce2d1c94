"""Local losses (Ren, Kornblith, Liao, Hinton; arXiv 2210.03310) and local backprop (L-BP, LG-BP).

`LocalLosses` is shared by lbp (here), fa and dfa (fa.py) and fg (fg.py). Each holds a final head
on the stack's readout of the last block (it predicts) and one local head per block on the
block's local readout (LocalMixer: normalised per patch and group, averaged over patches; MLP:
the layer's output). Option `local` says what the network learns from:

- none: the final loss alone, end to end (BP, FA, FG-W, FG-A);
- local: every block's local loss, gradients flowing end to end (L-BP, L-FA);
- greedy: local losses with a stop-gradient between blocks (LG-BP, LG-FA, LG-FG-W, LG-FG-A).

With local losses the final head is a readout trained on detached features (the official code's
`readout=True`); heads a rule does not learn from train as probes on detached features and never
shape the network. For backprop the paper's per-patch-and-group stop-gradient masks change
nothing (the masked losses' gradients sum to the unmasked loss's), so only fg applies them.

Every rule here predicts with its final head, so the `pred_mode` column names the method
instead, as the paper's Table 3 row (`lg-bp`, `fa`, `lg-fg-a`, ...), on every row of the run:
the rule options do not reach the tidy CSV otherwise.
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms.base import LearningRule, Option, register
from mfbench.sites import Act, Session, relu_to_act, sites

LOCAL_WHY = ("none: the final loss alone, end to end; local: every block's local loss, end to end (L-*); "
             "greedy: local losses, stop-gradient between blocks (LG-*)")


class LocalLosses(LearningRule):
    stem: ClassVar[str]  # the method's name without its L-/LG- prefix
    prefix: ClassVar[dict[str, str]] = {"none": "", "local": "l-", "greedy": "lg-"}

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        relu_to_act(model)  # MLP/CNN ReLUs become activation sites (LocalMixer's already are)
        for i, b in enumerate(model.blocks):
            for m in b.modules():
                if isinstance(m, Act):
                    m.block = i
        self.head = nn.Linear(model.readout_features, num_classes)  # first: initialised as bp's head is
        self.local_heads = nn.ModuleList(nn.Linear(f, num_classes) for f in model.local_features)
        self.pred_modes = (self.method(),)  # instance: the method this configuration is
        self.method_label = self.method()  # ...on the training rows too (losses, grad_cosine, epoch_time)
        self.site_shapes, self.site_acts = self._probe_sites()

    def method(self) -> str:
        """The paper's name of this configuration (Table 3 row), lower case."""
        return self.prefix[self.opts.get("local", "none")] + self.stem

    def _probe_sites(self):
        """Per-example shape and Act of every activation site, in call order (one tiny forward)."""
        with torch.no_grad(), sites(self.model, Session()) as s:
            self.model(torch.zeros(1, *self.model.in_shape))
        return [tuple(a.shape[1:]) for a in s.pre], s.acts

    def head_losses(self, local_in: list[torch.Tensor], final_in: torch.Tensor, y: torch.Tensor):
        """Local losses on each block output and the final loss; also the final logits."""
        out = {f"loss_block{i}": F.cross_entropy(h(self.model.local_readout(o)), y)
               for i, (h, o) in enumerate(zip(self.local_heads, local_in))}
        logits = self.head(self.model.readout(final_in))
        out["loss"] = F.cross_entropy(logits, y)
        return out, logits

    def train_step(self, x, y, phase):
        local = self.opts["local"]
        outs = self.model.activations(x, detach=local == "greedy")
        det = [o.detach() for o in outs]
        losses, _ = self.head_losses(det if local == "none" else outs, outs[-1] if local == "none" else det[-1], y)
        self.opt.zero_grad(set_to_none=True)
        self.backward_from(sum(losses.values()))
        self.opt.step()
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def predict(self, x, mode):
        return self.head(self.model.readout(self.model(x)))


@register
class LocalBackprop(LocalLosses):
    name = "lbp"
    stem = "bp"
    pred_modes = ("l-bp", "lg-bp", "heads-only")
    options = {"local": Option("greedy", LOCAL_WHY + "; `bp` is plain backprop", ("local", "greedy")),
               "frozen": Option(False, "true: a control, the network keeps its initial weights and only the heads "
                                       "learn (what a readout of random features reaches)", (False, True))}

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        if self.opts["frozen"]:
            model.requires_grad_(False)
        self.opt = self.make_optimizer(p for p in self.parameters() if p.requires_grad)

    def method(self) -> str:
        return "heads-only" if self.opts["frozen"] else super().method()

