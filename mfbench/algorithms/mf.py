"""Mono-Forward (Gong, Li, Abdulla; arXiv 2501.09238).

Layer i computes a_i = relu(W_i a_{i-1}.detach()) and its goodness G_i = a_i M_i^T
with a projection M_i (classes x features). L_i = CE(G_i, y) updates W_i and M_i.

Three ways to take a step (option `update`), one computation:
- `per_layer`: L_i's backward and layer i's optimizer step run before layer i+1 does, so
  each layer's graph is freed before the next is built and no activation outlives its
  layer: how the paper's memory figures are made (memory experiments take this one).
- `joint`: one backward over sum_i L_i, then one optimizer step over every layer. The
  detach makes dL_j/dW_i = 0 for j != i, so each parameter gets exactly its own layer's
  gradient through the same kernels, and layer i+1 sees a_i computed before layer i's
  update either way: bitwise the parameters of `per_layer`.
- `batched`: `joint`, with every G_i and L_i of equal-width layers from one batched
  matmul and one cross-entropy; on an MLP also every layer's backward batched across
  layers (`_BatchedMLP`: the detach leaves each layer's gradient to its own G_i). Kernel
  launches per step (`mfbench speed`; fused Adam): 2 per layer + 16 where BP needs 6 per
  layer + 9, per_layer about 15 per layer: at depth 2 / 4 / 15, MF 20 / 24 / 46 and
  BP 21 / 33 / 99. Equal to `per_layer` up to float32 rounding (batched GEMMs and the
  batched cross-entropy sum in another order). Layers of different widths (CNNs) take `joint`.
- `auto` (default): chosen by device, and the choice is what the run's metadata records
  (`resolved_options.update`): `batched` on CUDA, where a small step is bound by kernel
  launches; `joint` elsewhere: on the CPU a step is arithmetic, and batched is no faster
  there (4x1000 MLP, paired rounds of process CPU time: 1.01-1.02x joint's steps/s at
  batch 128, 0.99x at 1024), while joint gives per_layer's parameters bitwise.
`joint` and `batched` hold every layer's graph until the one backward: their memory grows
with depth.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.algorithms import stacking
from mfbench.algorithms.base import LearningRule, Option, register
from mfbench.errors import ConfigError


class _Goodness(torch.autograd.Function):
    """G = a M^T per layer (batched), whose backward gives both gradients contiguous: a's, so every
    ReLU's backward reads it in order (a strided one cost the CPU 10 % of the step), and M's, so
    no layer's gradient is copied when it is accumulated (autograd's bmm gives one of the two
    transposed, whichever way round the product is written)."""

    @staticmethod
    def forward(ctx, a, m):
        ctx.save_for_backward(a, m)
        return torch.bmm(a, m.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        a, m = ctx.saved_tensors
        ga = torch.bmm(g, m) if ctx.needs_input_grad[0] else None
        return ga, torch.bmm(g.transpose(1, 2), a) if ctx.needs_input_grad[1] else None


class _BatchedMLP(torch.autograd.Function):
    """The `batched` step's layers on an MLP of equal widths: a_i = relu(W_i a_{i-1} + b_i) for each
    layer, written into one (layers, B, width) tensor (no copy to batch them), and every G_i = a_i M_i^T
    from one batched matmul. The backward uses what the detach between layers guarantees, that dL/da_i
    comes from G_i alone, so it needs no layer's result to start another's: every layer's ReLU backward
    is one op, every bias gradient one sum, every weight gradient one batched matmul (the first
    layer's, on the wider input, one more). Through autograd each layer costs 5 launches; here 2 (its
    forward). The same products as autograd's, summed in another order (float32 rounding apart)."""

    @staticmethod
    def forward(ctx, x, *wbm):
        d = len(wbm) // 3
        ws, bs, ms = wbm[:d], wbm[d:2 * d], wbm[2 * d:]
        a = x.new_empty(d, len(x), ws[0].shape[0])
        h = x
        for i in range(d):
            h = torch.addmm(bs[i], h, ws[i].t(), out=a[i]).relu_()  # F.linear's own kernel, then the ReLU
        m = torch.stack(ms)
        ctx.save_for_backward(x, a, m)
        return torch.bmm(a, m.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        x, a, m = ctx.saved_tensors
        d, need = len(a), ctx.needs_input_grad
        gm = torch.bmm(g.transpose(1, 2), a).unbind() if need[-1] else (None,) * d  # frozen M_i: none
        gz = torch.ops.aten.threshold_backward(torch.bmm(g, m), a, 0)  # ReLU's backward, every layer at once
        gw = [gz[0].t().mm(x)]
        if d > 1:
            gw += torch.bmm(gz[1:].transpose(1, 2), a[:-1]).unbind()
        return None, *gw, *gz.sum(1).unbind(), *gm


@register
class MonoForward(LearningRule):
    name = "mf"
    pred_modes = ("ff", "bp")  # ff: sum of G_i over layers; bp: last layer's G only
    schedules = ("simultaneous", "greedy")
    stackable = True
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
        "token_head": Option("pool", "on a token stack (arch mixer: blocks output tokens x hidden) M_i reads the block's "
                                     "own readout: LayerNorm per token, then the mean over tokens, what the Mixer's "
                                     "classifier reads (v2 publishes no readout); flatten: M_i on all tokens x hidden",
                             ("pool", "flatten")),
        "update": Option("auto", "how a step is taken, one computation (tests compare the parameters): per_layer "
                                 "frees each layer's graph before the next layer runs (the paper's memory behaviour); "
                                 "joint is one backward + one optimizer step (bitwise per_layer); batched also computes "
                                 "all layers' goodness in one matmul (fewest launches; float32 rounding apart); auto: "
                                 "batched on CUDA, joint elsewhere (the faster step on each; recorded in the metadata)",
                         ("auto", "batched", "joint", "per_layer")),
    }
    memory_options = {"update": "per_layer"}

    def __init__(self, model, num_classes: int, cfg):
        super().__init__(model, num_classes, cfg)
        if self.opts["update"] == "auto":  # resolved here, so rule.opts (and the run's metadata) name the step taken
            self.opts["update"] = self.device_update(cfg.resolved_device())
        learn = self.opts["learn_projection"]
        if not learn and self.opts["m_init"] == "zeros":
            raise ConfigError("option mf.learn_projection=False with mf.m_init='zeros' leaves every G_i = 0 and no "
                              "gradient for W_i; use m_init kaiming_uniform or normal")
        self.gap = self.opts["cnn_head"] == "gap" and len(model.out_shapes[0]) == 3  # blocks output maps
        self.token_pool = self.opts["token_head"] == "pool" and len(model.out_shapes[0]) == 2  # blocks output tokens
        feats = [s[0] for s in model.out_shapes] if self.gap else \
            list(model.local_features) if self.token_pool else list(model.out_features)
        self.projections = nn.ModuleList(self._projection(f) for f in feats)
        self.input_proj = None
        if self.opts["input_projection"]:
            d_in = 1
            for s in model.in_shape:
                d_in *= s
            self.input_proj = self._projection(d_in, pool=False)  # it reads the raw input: nothing to pool
        if not learn:
            for p in [*self.projections.parameters(), *(self.input_proj.parameters() if self.input_proj else [])]:
                p.requires_grad_(False)
        # G_i of all layers as one batched matmul: every M_i a plain Linear of one input size.
        self.batched = self.opts["update"] == "batched" and len(set(feats)) == 1 \
            and all(len(p) == 2 for p in self.projections)
        # ... and on an MLP (blocks: [Flatten,] Linear, ReLU), the layers too (`_BatchedMLP`), except under
        # bf16 autocast, which its out= matmuls would bypass.
        self.batched_mlp = self.batched and cfg.precision != "bf16" and all(
            isinstance(b[-2], nn.Linear) and isinstance(b[-1], nn.ReLU)
            and all(isinstance(m, nn.Flatten) for m in b[:-2]) for b in model.blocks)
        if self.opts["update"] != "per_layer":  # frozen M_i (and M_0) stay out of it
            self.opt = self.make_optimizer(p for p in self.parameters() if p.requires_grad)
        else:  # one optimizer per layer: a layer's step depends on its own loss and state only
            self.layer_opts = [self.make_optimizer([*b.parameters(), *(m.parameters() if learn else [])])
                               for b, m in zip(model.blocks, self.projections)]
            # frozen, an M_0 on the raw input has nothing to learn: it only adds its fixed G_0 to ff-pred
            self.input_opt = self.make_optimizer(self.input_proj.parameters()) if learn and self.input_proj else None

    @staticmethod
    def device_update(device: str) -> str:
        """The `update` that `auto` takes on `device`."""
        return "batched" if torch.device(device).type == "cuda" else "joint"

    def _projection(self, features: int, pool: bool = True) -> nn.Module:
        lin = nn.Linear(features, self.num_classes, bias=False)
        if self.opts["m_init"] == "normal":
            nn.init.normal_(lin.weight, std=features ** -0.5)
        elif self.opts["m_init"] == "zeros":
            nn.init.zeros_(lin.weight)
        first = [] if not pool else [nn.AdaptiveAvgPool2d(1)] if self.gap else \
            [self.model.local_readout] if self.token_pool else []
        return nn.Sequential(*first, nn.Flatten(), lin)

    def train_step(self, x, y, phase):
        if self.opts["update"] == "per_layer":
            return self._per_layer_step(x, y, phase)
        first = self.first_trained(phase)
        losses = {}
        if self.input_proj is not None and self.opts["learn_projection"] and first == 0:
            losses["loss_input"] = F.cross_entropy(self.input_proj(x), y)
        h = x
        if first:
            with torch.no_grad():
                for b in self.model.blocks[:first]:
                    h = b(h)
        self.opt.zero_grad(set_to_none=True)
        if self.batched_mlp and self.n_active - first > 1 and not losses:
            losses = self._batched_mlp_step(h, y, first)
            self.opt.step()
            return losses
        acts = []
        for b in self.model.blocks[first:self.n_active]:
            h = b(h.detach())
            acts.append(h)
        per_layer = self._layer_losses(acts, self.projections[first:self.n_active], y)
        if "loss_input" in losses:
            total = per_layer.sum() + losses["loss_input"]
            total.backward()
            mean = total.detach() / (len(per_layer) + 1)
        else:  # d(sum_i L_i)/dL_i = 1: a cached ones vector saves the sum and autograd's ones_like (2 launches)
            n, like = len(per_layer), per_layer
            ones = self.constant(("ones", n, like.device, like.dtype),
                                 lambda: torch.ones(n, device=like.device, dtype=like.dtype))
            torch.autograd.backward(per_layer, ones)
            mean = per_layer.detach().mean()
        self.opt.step()
        losses = {k: v.detach() for k, v in losses.items()}
        losses.update({f"loss_layer{i}": v for i, v in zip(range(first, self.n_active), per_layer.detach())})
        losses["loss"] = mean  # mean over the local losses, as per_layer reports
        return losses

    def _batched_mlp_step(self, h, y, first):
        """Layers first.. of an MLP through `_BatchedMLP`, one cross-entropy over every layer's rows, the
        backward (gradients left in .grad), and the losses to report."""
        blocks, projs = self.model.blocks[first:self.n_active], self.projections[first:self.n_active]
        g = _BatchedMLP.apply(h.detach().flatten(1), *[b[-2].weight for b in blocks], *[b[-2].bias for b in blocks],
                              *[p[-1].weight for p in projs])
        d, n, c = g.shape
        rows = F.cross_entropy(g.view(d * n, c), y.repeat(d), reduction="none")  # layer i's rows: i*n .. (i+1)*n
        key = (d, n, rows.device, rows.dtype)
        # d(sum_i mean over the batch of L_i)/d(row) = 1/n: seeding the backward with it saves the
        # per-layer mean and its backward (2 launches); the losses to report come from one matrix-vector
        # product, row i averaging layer i's rows and the last row all of them (1 launch where a mean per
        # layer and one over the layers take 2).
        torch.autograd.backward(rows, self.constant(("seed",) + key, lambda: rows.new_full((d * n,), 1 / n)))
        avg = self.constant(("avg",) + key, lambda: torch.cat([
            torch.block_diag(*[rows.new_full((1, n), 1 / n)] * d), rows.new_full((1, d * n), 1 / (d * n))]))
        out = avg @ rows.detach()
        losses = {f"loss_layer{first + i}": v for i, v in enumerate(out[:d])}
        losses["loss"] = out[d]  # mean over the local losses, as per_layer reports
        return losses

    def _layer_losses(self, acts, projs, y) -> torch.Tensor:
        """CE(G_i, y) of each layer, as a vector. Batched: every row's loss and gradient are those
        of its own layer's CE (mean over the batch) computed alone."""
        if not self.batched or len(acts) == 1:
            return torch.stack([F.cross_entropy(p(a), y) for p, a in zip(projs, acts)])
        a = torch.stack([t.flatten(1) for t in acts])  # (layers, B, features)
        m = torch.stack([p[-1].weight for p in projs])  # (layers, classes, features)
        g = _Goodness.apply(a, m)  # (layers, B, classes)
        d, b, c = g.shape
        return F.cross_entropy(g.view(d * b, c), y.repeat(d), reduction="none").view(d, b).mean(1)

    def _per_layer_step(self, x, y, phase):
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

    @classmethod
    def stack_refusal(cls, cfg):
        opts = cls.resolve_options(cfg.options)
        if opts["input_projection"] or not opts["learn_projection"]:
            return "mf with input_projection or a frozen projection cannot stack (defaults only)"
        return stacking.mlp_refusal(cfg)

    def stacked_names(self):
        hidden = [n for pair in stacking.hidden_names(self) for n in pair]
        return hidden + [f"projections.{i}.1.weight" for i in range(len(self.projections))]

    def stacked_step(self, t, xs, ys, rngs, step):
        """The joint step (bitwise the per-layer one) of every seed: a_i from the detached a_{i-1}."""
        h, losses = xs.flatten(2), []
        for i, (w, b) in enumerate(stacking.hidden_names(self)):
            h = F.relu(stacking.linear(h.detach(), t[w], t[b]))
            losses.append(stacking.cross_entropy(stacking.linear(h, t[f"projections.{i}.1.weight"]), ys))
        per_layer = torch.stack(losses)  # (layers, k)
        per_layer.sum().backward()
        per_layer = per_layer.detach()
        out = {f"loss_layer{i}": v for i, v in enumerate(per_layer)}
        out["loss"] = per_layer.mean(0)  # per seed, the mean over its local losses, as train_step reports
        return out

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
        return self._ff_scores(self.goodness(x))

    @torch.no_grad()
    def predict_all(self, x):
        gs = self.goodness(x)  # one pass: bp is the last layer's G, ff the sum of all
        return {"ff": self._ff_scores(gs), "bp": gs[-1]}

    def _ff_scores(self, gs: list[torch.Tensor]) -> torch.Tensor:
        if self.opts["ff_pred"] == "softmax":
            gs = [g.softmax(-1) for g in gs]
        return torch.stack(gs).sum(0)
