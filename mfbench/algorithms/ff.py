"""Forward-Forward (Hinton, arXiv 2212.13345), supervised, for MLPs.

The label is overlaid on the first `num_classes` input values. Each layer sees the
length-normalised, detached output of the one below (so only the direction of the
lower layer's activity reaches it, not its goodness) and is trained on its own to
give high goodness (squared activity) to positive data (true label overlaid) and
low goodness to negative data (a wrong label overlaid): loss = softplus of the
goodness' signed distance to a threshold, i.e. the logistic loss of
p(positive) = sigmoid(goodness - threshold).

Prediction, `goodness`: overlay every candidate label, accumulate goodness over
the layers from `goodness_from_layer` on, take the label with the most. All labels
go through as ONE batched pass of B*C rows (chunked by `pred_chunk`), never a
Python loop over labels. `softmax`: one pass with a neutral label (1/C in every
label slot); a linear softmax readout on the normalised activities (detached, so
it never shapes the layers) of the layers from `readout_from_layer` on.

Hinton's setup as loeweX's re-implementation reads it (the `hinton_ff` config): raw
pixels in [0, 1] (run key input_norm: none), sum-of-squares goodness against the
width (goodness: sum, threshold 1.0), peer normalisation with running means from 0.5
through a ReLU whose backward reaches dead units (peer_init 0.5, relu_grad: full).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms import stacking
from mfbench.algorithms.base import LearningRule, Option, register
from mfbench.errors import ConfigError


@register
class ForwardForward(LearningRule):
    name = "ff"
    pred_modes = ("goodness", "softmax")
    schedules = ("simultaneous", "greedy")
    stackable = True
    options = {
        "threshold": Option(1.0, "theta per unit: p(positive) = sigmoid(goodness - theta) for mean goodness, "
                                 "sigmoid(goodness - theta x width) for sum goodness; 1.0 with sum = loeweX's "
                                 "re-implementation (sum of squares vs the layer width); the reference 2x500 code "
                                 "uses mean vs 2.0"),
        "goodness": Option("mean", "mean: squared activities averaged over the layer; sum: summed (Hinton's "
                                   "definition) and compared with threshold x width: the same decision boundary as "
                                   "mean vs threshold, but width-times larger logits, so a sharper logistic loss, a "
                                   "relatively weaker peer-norm term and, under SGD, width-times larger steps (Adam "
                                   "undoes only the last)",
                           ("mean", "sum")),
        "norm": Option("rms", "each layer's input is divided by its length; rms scales it to mean square 1 per unit "
                              "(loeweX's re-implementation), length to unit norm (the reference 2x500 PyTorch code), which with "
                              "O(1) weights learns far slower", ("rms", "length")),
        "negatives": Option("random", "random: a uniformly drawn wrong label per example; hard: a wrong label sampled "
                                      "in proportion to the model's own goodness softmax (Hinton's MNIST result)",
                            ("random", "hard")),
        "label_value": Option("max", "value in the label's slot: the example's largest input value, as bright as "
                                     "a pixel (reference code: x.max(); Hinton's [0, 1] images: 1), or 1.0: a weaker "
                                     "label, slower goodness learning, but a steadier neutral-label readout on MNIST",
                              ("max", "one")),
        "peer_norm": Option(0.0, "weight of Hinton's peer normalisation (running mean activity of each unit pulled "
                                 "toward the layer mean); 0 = off, 0.03 in loeweX's re-implementation"),
        "peer_momentum": Option(0.9, "momentum of the running mean activity used by peer normalisation"),
        "peer_init": Option(0.0, "start of each unit's running mean activity; 0.5 in loeweX's re-implementation, "
                                 "which (with momentum 0.9) pulls every unit toward the layer mean from the first "
                                 "steps instead of ramping up from 0"),
        "relu_grad": Option("standard", "standard: a unit dead for the whole batch gets no gradient; full: the "
                                        "backward passes the gradient to every unit, active or not (loeweX's "
                                        "ReLU_full_grad). The goodness gradient 2a is 0 at a dead unit either way, "
                                        "so full only lets peer normalisation revive dead units; without "
                                        "peer_norm both are the same", ("standard", "full")),
        "goodness_from_layer": Option(0, "all layers (reference code); Hinton skips the first hidden layer of his 4-layer net (1); "
                                         "clamped to the layers trained so far"),
        "readout": Option(True, "train the one-pass linear softmax readout (pred mode `softmax`); off when only "
                                "goodness prediction is wanted, e.g. to time FF as the study did", (True, False)),
        "readout_from_layer": Option(0, "all layers; Hinton's softmax reads all but the first (1); clamped like "
                                        "goodness_from_layer"),
        "pred_chunk": Option(65536, "rows per batched all-label pass (B*C overlaid inputs): bounds memory, no "
                                    "per-label loop"),
    }

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        if cfg.arch != "mlp":
            raise ConfigError(f"algorithm 'ff' supports arch 'mlp' only (the label overlay on the first input values "
                              f"has no conv analogue here), got arch {cfg.arch!r}")
        d_in = 1
        for s in model.in_shape:
            d_in *= s
        if num_classes > d_in:
            raise ConfigError(f"ff overlays {num_classes} labels on the input but it has only {d_in} values")
        o = self.opts
        for k in ("goodness_from_layer", "readout_from_layer"):
            if o[k] < 0:
                raise ConfigError(f"option ff.{k} must be >= 0, got {o[k]!r}")
        if o["pred_chunk"] < num_classes:
            raise ConfigError(f"option ff.pred_chunk must be >= the number of classes ({num_classes}), got {o['pred_chunk']!r}")
        if o["peer_norm"] < 0 or not 0 <= o["peer_momentum"] < 1:
            raise ConfigError(f"option ff.peer_norm must be >= 0 and ff.peer_momentum in [0, 1), got "
                              f"{o['peer_norm']!r}, {o['peer_momentum']!r}")
        if not o["readout"]:
            self.pred_modes = ("goodness",)  # instance override: nothing trains a softmax readout
        if o["relu_grad"] == "full":
            for b in model.blocks:
                for j, m in enumerate(b):
                    if isinstance(m, nn.ReLU):
                        b[j] = FullGradReLU()
        widths = list(model.out_features)
        self.layer_opts = [self.make_optimizer(b.parameters()) for b in model.blocks]
        for i, w in enumerate(widths):
            self.register_buffer(f"running_mean{i}", torch.full((w,), float(o["peer_init"])))
        self.readouts = nn.ModuleList(nn.Linear(w, num_classes) for w in widths)
        self.readout_opt = self.make_optimizer(self.readouts.parameters()) if o["readout"] else None

    # --- pieces -------------------------------------------------------------------------
    def overlay(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Flattened x with its first C values replaced by the label's one-hot code
        (labels=None: the neutral label, value/C in every slot)."""
        x = x.flatten(1)
        c = self.num_classes
        v = x.amax(1, keepdim=True) if self.opts["label_value"] == "max" else x.new_ones(len(x), 1)
        code = v.expand(-1, c) / c if labels is None else self.one_hot(labels, x.dtype) * v
        return torch.cat([code, x[:, c:]], 1)

    def normalize(self, h: torch.Tensor) -> torch.Tensor:
        # eps keeps an all-zero ReLU output finite (reference code: 1e-4 on the length)
        if self.opts["norm"] == "length":
            return h / (h.norm(dim=1, keepdim=True) + 1e-4)
        return h / (h.pow(2).mean(1, keepdim=True).sqrt() + 1e-8)

    def goodness_of(self, a: torch.Tensor) -> torch.Tensor:
        sq = a.pow(2)
        return sq.sum(1) if self.opts["goodness"] == "sum" else sq.mean(1)

    def logits(self, a: torch.Tensor) -> torch.Tensor:
        """log-odds of `positive` per row: goodness minus the threshold (per unit, so x width for sum)."""
        thr = self.opts["threshold"] * (a.shape[1] if self.opts["goodness"] == "sum" else 1)
        return self.goodness_of(a) - thr

    def _first(self, key: str) -> int:
        return min(self.opts[key], self.n_active - 1)

    @torch.no_grad()
    def _forward(self, h: torch.Tensor, upto: int) -> list[torch.Tensor]:
        """Outputs of layers [0, upto) for already overlaid inputs."""
        outs = []
        for b in self.model.blocks[:upto]:
            h = b(self.normalize(h))
            outs.append(h)
        return outs

    @torch.no_grad()
    def all_label_goodness(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) goodness accumulated over layers, every label overlaid, in batched
        passes of at most `pred_chunk` rows."""
        c = self.num_classes
        first = self._first("goodness_from_layer")
        labels = torch.arange(c, device=x.device)
        per = max(1, self.opts["pred_chunk"] // c)  # examples per chunk
        out = []
        for xb in x.split(per):
            rows = self.overlay(xb.repeat_interleave(c, 0), labels.repeat(len(xb)))
            g = sum(self.goodness_of(a) for a in self._forward(rows, self.n_active)[first:])
            out.append(g.view(len(xb), c))
        return torch.cat(out)

    def _negative_labels(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.num_classes
        if self.opts["negatives"] == "hard":
            scores = self.all_label_goodness(x).float()
            scores[torch.arange(len(y), device=y.device), y] = float("-inf")
            return torch.multinomial(scores.softmax(1), 1).squeeze(1)
        # uniform among the C-1 wrong labels: shift the true label by 1..C-1
        return (y + torch.randint(1, c, y.shape, device=y.device)) % c

    # --- training -----------------------------------------------------------------------
    def train_step(self, x, y, phase):
        n = len(y)
        first = self.first_trained(phase)
        # Positive and negative data go through each layer as one batched call.
        h = torch.cat([self.overlay(x, y), self.overlay(x, self._negative_labels(x, y))])
        if first:
            h = self._forward(h, first)[-1]
        losses = {}
        for i in range(first, self.n_active):
            a = self.model.blocks[i](self.normalize(h).detach())
            z = self.logits(a)
            loss = F.softplus(torch.cat([-z[:n], z[n:]])).mean()  # logistic loss: positives 1, negatives 0
            if self.opts["peer_norm"] > 0:
                loss = loss + self.opts["peer_norm"] * self._peer_loss(i, a[:n])
            opt = self.layer_opts[i]
            opt.zero_grad(set_to_none=True)
            self.backward_from(loss)  # this layer's graph only: its input was detached
            opt.step()
            losses[f"loss_layer{i}"] = loss.detach()
            h = a.detach()
        if self.readout_opt is not None:
            losses["loss_readout"] = self._readout_step(x, y)
        layer_losses = [v for k, v in losses.items() if k.startswith("loss_layer")]
        losses["loss"] = torch.stack(layer_losses).mean()
        return losses

    def _peer_loss(self, i: int, a_pos: torch.Tensor) -> torch.Tensor:
        # Running mean activity per unit, a graph through this batch's mean only.
        rm = getattr(self, f"running_mean{i}")
        m = self.opts["peer_momentum"]
        cur = m * rm + (1 - m) * a_pos.mean(0)
        rm.copy_(cur.detach())
        return (cur.mean() - cur).pow(2).mean()

    def _readout_features(self, x: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        outs = self._forward(self.overlay(x, None), self.n_active)
        first = self._first("readout_from_layer")
        return [(i, self.normalize(outs[i])) for i in range(first, self.n_active)]

    def _readout_logits(self, feats) -> torch.Tensor:
        # A linear layer on the concatenated activities = the sum of one per layer.
        return sum(self.readouts[i](f) for i, f in feats)

    def _readout_step(self, x, y) -> torch.Tensor:
        loss = F.cross_entropy(self._readout_logits(self._readout_features(x)), y)
        self.readout_opt.zero_grad(set_to_none=True)
        self.backward_from(loss)
        self.readout_opt.step()
        return loss.detach()

    # --- stacked seeds (algorithms.stacking) ----------------------------------------------
    @classmethod
    def stack_refusal(cls, cfg):
        o = cls.resolve_options(cfg.options)
        if o["negatives"] != "random" or o["peer_norm"] or o["relu_grad"] != "standard":
            return "ff with hard negatives, peer_norm or relu_grad full cannot stack"
        return stacking.mlp_refusal(cfg)

    def stacked_names(self):
        hidden = [n for pair in stacking.hidden_names(self) for n in pair]
        return hidden + ([f"readouts.{i}.{p}" for i in range(len(self.readouts)) for p in ("weight", "bias")]
                         if self.readout_opt is not None else [])

    def _stacked_overlay(self, x, labels):
        c = self.num_classes
        v = x.amax(-1, keepdim=True) if self.opts["label_value"] == "max" else x.new_ones(*x.shape[:-1], 1)
        code = v.expand(*x.shape[:-1], c) / c if labels is None else self.one_hot(labels, x.dtype) * v
        return torch.cat([code, x[..., c:]], -1)

    def _stacked_norm(self, h):
        if self.opts["norm"] == "length":
            return h / (h.norm(dim=-1, keepdim=True) + 1e-4)
        return h / (h.pow(2).mean(-1, keepdim=True).sqrt() + 1e-8)

    def stacked_step(self, t, xs, ys, rngs, step):
        """train_step of every seed (simultaneous; its wrong labels from its own generator): one backward
        serves every layer (each layer's input is detached), then the readout's step on the updated layers."""
        x, (k, n), c = xs.flatten(2), ys.shape, self.num_classes
        shift = torch.stack([torch.randint(1, c, (n,), generator=g, device=ys.device) for g in rngs])
        h = torch.cat([self._stacked_overlay(x, ys), self._stacked_overlay(x, (ys + shift) % c)], 1)  # (k, 2n, D)
        names, losses = stacking.hidden_names(self), {}
        for i, (w, b) in enumerate(names):
            a = F.relu(stacking.linear(self._stacked_norm(h).detach(), t[w], t[b]))
            sq = a.pow(2)
            z = (sq.sum(-1) if self.opts["goodness"] == "sum" else sq.mean(-1)) \
                - self.opts["threshold"] * (a.shape[-1] if self.opts["goodness"] == "sum" else 1)
            losses[f"loss_layer{i}"] = F.softplus(torch.cat([-z[:, :n], z[:, n:]], 1)).mean(1)
            h = a.detach()
        sum(v.sum() for v in losses.values()).backward()
        if self.readout_opt is not None:
            step()  # the layers step first: the readout reads the updated layers, as train_step's does
            with torch.no_grad():
                h, feats = self._stacked_overlay(x, None), []
                for w, b in names:
                    h = F.relu(stacking.linear(self._stacked_norm(h), t[w], t[b]))
                    feats.append(self._stacked_norm(h))
            first = self._first("readout_from_layer")
            logits = sum(stacking.linear(feats[i], t[f"readouts.{i}.weight"], t[f"readouts.{i}.bias"])
                         for i in range(first, len(names)))
            losses["loss_readout"] = stacking.cross_entropy(logits, ys)
            losses["loss_readout"].sum().backward()
        out = {k_: v.detach() for k_, v in losses.items()}
        out["loss"] = torch.stack([v for k_, v in out.items() if k_.startswith("loss_layer")]).mean(0)
        return out

    # --- prediction -----------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x, mode):
        if mode == "goodness":
            return self.all_label_goodness(x)
        if mode == "softmax" and self.readout_opt is not None:
            return self._readout_logits(self._readout_features(x))
        raise ConfigError(f"ff has no prediction mode {mode!r}; allowed: {', '.join(self.pred_modes)}")


class _PassGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class FullGradReLU(nn.Module):
    """ReLU forward, identity backward: gradient reaches every unit, active or not (relu_grad=full)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _PassGrad.apply(x)
