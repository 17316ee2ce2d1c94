"""Forward gradient with local losses (Ren, Kornblith, Liao, Hinton; arXiv 2210.03310), for MLPs and LocalMixer.

A forward gradient is (dL/dw . v) v for a random direction v ~ N(0, I): an unbiased gradient
estimate from one forward-mode pass (dual tensors, `torch.autograd.forward_ad`; K > 1 directions:
`torch.func.jvp` under vmap) and no backward pass through the network.

- perturb=weight (FG-W): v perturbs every block weight; g(w) = (dL/dw . v) v.
- perturb=activity (FG-A): v perturbs every hidden pre-activation z (the ReLU input); the
  estimate (dL/dz . v) v, zero on inactive ReLUs (their tangent is zero, so they are not
  perturbed), reaches the layer's weights through that layer alone (its LayerNorm and linear
  map, exactly): g(w_ij) = x_i (dL/dz . v) v_j.
- local=greedy (LG-FG-*): each block learns from its own local loss; the stop-gradient between
  blocks stops tangents too, so a block's directional derivative sees only its own perturbation.
  masks=true adds the paper's stop-gradient masks: the loss of patch p and group g sees only the
  tangent of that patch and group, and each unit (FG-A) or each weight group (FG-W) uses only
  the directional derivative of its own patch-and-group loss (token-mixing units: all groups of
  their patch). local=none (FG-W, FG-A): every unit uses that of the final loss.

A loss's directional derivative is the tangent of the block output dotted with the loss's exact
gradient there, which the (linear, local) head gives: the heads learn from exact local gradients.
One jvp per step gives every directional derivative at once; `directions` = K > 1 batches K
directions into that one call (vmap) and averages the K estimates.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd import forward_ad
from torch.func import functional_call, jvp, vmap
from torch.utils._pytree import tree_map

from mfbench.algorithms.base import Option, register
from mfbench.algorithms.local import LocalLosses
from mfbench.errors import ConfigError
from mfbench.sites import Session, sites


def _first(tree):
    """The first direction of tangents with a leading K dimension (lists and dicts of tensors)."""
    if isinstance(tree, dict):
        return {k: _first(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_first(v) for v in tree]
    return tree[0]


@register
class ForwardGradient(LocalLosses):
    name = "fg"
    stem = "fg"
    pred_modes = ("fg-w", "fg-a", "lg-fg-w", "lg-fg-a")
    metric_units = {"grad_cosine": "cosine"}
    options = {
        "perturb": Option("activity", "activity: perturb pre-activations (FG-A, the paper's lower-variance choice); "
                                      "weight: perturb weights (FG-W)", ("activity", "weight")),
        "local": Option("greedy", "greedy: block-wise local losses with stop-gradient between blocks (LG-FG-*); "
                                  "none: the final loss, end to end", ("none", "greedy")),
        "masks": Option(True, "local=greedy: the paper's stop-gradient masks (each unit learns from its own patch "
                              "and group's loss); false: from its block's whole loss", (True, False)),
        "directions": Option(1, "random directions per step, batched in one jvp and averaged (the official "
                                "code's default: one)"),
        "cosine_every": Option(0, "every N steps also backprop the true local gradient on the same batch and "
                                  "record its cosine with the estimate (metric grad_cosine); 0 = off"),
    }

    def __init__(self, model, num_classes: int, cfg):
        if cfg.arch not in ("mlp", "localmixer"):
            raise ConfigError(f"algorithm 'fg' supports arch mlp and localmixer (the paper's), got {cfg.arch!r}")
        super().__init__(model, num_classes, cfg)
        if self.opts["directions"] < 1 or self.opts["cosine_every"] < 0:
            raise ConfigError(f"option fg.directions must be >= 1 and fg.cosine_every >= 0, got "
                              f"{self.opts['directions']!r}, {self.opts['cosine_every']!r}")
        # (block, name within the block, parameter, groups along its dim 0)
        self.block_params = [(i, f"{mod}.{pn}" if mod else pn, p, getattr(m, "fg_groups", 1))
                             for i, b in enumerate(model.blocks) for mod, m in b.named_modules()
                             for pn, p in m.named_parameters(recurse=False)]
        self.opt = self.make_optimizer(self.parameters())
        self.steps = 0

    def method(self) -> str:
        o = self.opts
        s = ("lg-" if o["local"] == "greedy" else "") + "fg-" + o["perturb"][0]
        s += "-nomask" if o["local"] == "greedy" and not o["masks"] else ""
        return s + (f"-k{o['directions']}" if o["directions"] > 1 else "")

    # --- one jvp ----------------------------------------------------------------------------
    def _jvp(self, f, primals, tangents):
        """Block outputs, their tangents (leading dim K) and f's aux, from one (batched) jvp."""
        k = self.opts["directions"]
        if k == 1:  # dual tensors: jvp's result without torch.func's per-op wrapping (~15 % of a 4x1000 MLP step)
            with forward_ad.dual_level():
                out, aux = f(tree_map(forward_ad.make_dual, primals, _first(tangents)))
                pairs = [forward_ad.unpack_dual(o) for o in out]
            return [p for p, _ in pairs], [(torch.zeros_like(p) if t is None else t).unsqueeze(0) for p, t in pairs], aux
        return vmap(lambda t: jvp(f, (primals,), (t,), has_aux=True), out_dims=(None, 0, None))(tangents)

    def _activity_pass(self, x, greedy):
        def f(noise):
            with sites(self.model, Session(noise=noise, cut=True)) as s:
                outs = self.model.activations(x, detach=greedy)
            return outs, s.pre  # pre-activations: their graphs reach one layer's weights each

        noise = [torch.randn(self.opts["directions"], len(x), *s, device=x.device) for s in self.site_shapes]
        outs, tans, pre = self._jvp(f, [torch.zeros_like(n[0]) for n in noise], noise)
        return outs, tans, (noise, pre)

    def _weight_pass(self, x, greedy):
        blocks = self.model.blocks

        def f(params):
            outs, h = [], x
            for b, p in zip(blocks, params):
                h = functional_call(b, p, (h.detach() if greedy else h,))
                outs.append(h)
            return outs, ()

        primals = [{} for _ in blocks]
        noise = [{} for _ in blocks]
        for i, n, p, _ in self.block_params:
            primals[i][n] = p.detach()
            noise[i][n] = torch.randn(self.opts["directions"], *p.shape, device=p.device)
        outs, tans, _ = self._jvp(f, primals, noise)
        return outs, tans, noise

    # --- the estimate -------------------------------------------------------------------------
    def _directional(self, tans, grads, final_grad, greedy) -> list[torch.Tensor]:
        """Per block, (K, B, patches, groups) directional derivatives of the loss each unit uses."""
        pp, gg = self.model.patches, self.model.groups

        def split(t, g):  # tangent . gradient, summed within each patch and group
            return (t * g).reshape(t.shape[0], g.shape[0], pp, gg, -1).sum(-1)

        if not greedy:
            j = split(tans[-1], final_grad).sum((2, 3), keepdim=True)
            return [j] * len(tans)
        js = [split(t, g) for t, g in zip(tans, grads)]
        return js if self.opts["masks"] else [j.sum((2, 3), keepdim=True) for j in js]

    def _activity_grads(self, js, noise, pre) -> None:
        pp, gg = self.model.patches, self.model.groups
        est = []
        for u, z, act in zip(noise, pre, self.site_acts):
            k, b = u.shape[:2]
            j = js[act.block]
            if act.grouped:
                g = j.unsqueeze(-1) * u.reshape(k, b, pp, gg, -1)
            else:  # token mixing: a unit serves every group of its patch
                g = j.sum(-1, keepdim=True) * u.reshape(k, b, pp, -1)
            g = g.reshape(u.shape)
            est.append((g[0] if k == 1 else g.mean(0)) * (z > 0))  # the mean of K estimates (K = 1: itself)
        torch.autograd.backward(pre, est)  # each through its own layer only (the sites cut the rest)

    def _weight_grads(self, js, noise) -> None:
        for i, n, p, groups in self.block_params:
            jg = js[i].sum((1, 2))  # (K, groups or 1): summed over the batch and the patches (shared weights)
            j = jg.sum(-1, keepdim=True) if groups == 1 else jg
            v = noise[i][n]
            p.grad = (j.unsqueeze(-1) * v.reshape(v.shape[0], groups, -1)).mean(0).reshape(p.shape)

    def true_grads(self, x, y) -> list[torch.Tensor]:
        """Backprop's gradient of the same losses, block weights only (the estimate's target)."""
        greedy = self.opts["local"] == "greedy"
        outs = self.model.activations(x, detach=greedy)
        if greedy:
            loss = sum(F.cross_entropy(h(self.model.local_readout(o)), y) for h, o in zip(self.local_heads, outs))
        else:
            loss = F.cross_entropy(self.head(self.model.readout(outs[-1])), y)
        return list(torch.autograd.grad(loss, [p for *_, p, _ in self.block_params]))

    def estimate(self, x, y) -> dict[str, torch.Tensor]:
        """Sets .grad of every parameter (blocks: forward gradient; heads: exact); returns the head losses."""
        greedy = self.opts["local"] == "greedy"
        if self.opts["perturb"] == "activity":
            outs, tans, noise = self._activity_pass(x, greedy)
        else:
            outs, tans, noise = self._weight_pass(x, greedy)
        leaves = [o.detach().requires_grad_() for o in outs]
        final = outs[-1].detach().requires_grad_()
        losses, _ = self.head_losses(leaves, final, y)
        sum(losses.values()).backward()  # heads' gradients, and each loss's gradient at its block output
        js = self._directional(tans, [v.grad for v in leaves], final.grad, greedy)
        if self.opts["perturb"] == "activity":
            self._activity_grads(js, *noise)
        else:
            self._weight_grads(js, noise)
        return {k: v.detach() for k, v in losses.items()}

    def train_step(self, x, y, phase):
        self.opt.zero_grad(set_to_none=True)
        out = self.estimate(x, y)
        every = self.opts["cosine_every"]
        if every and self.steps % every == 0:
            est = torch.cat([p.grad.flatten() for *_, p, _ in self.block_params])
            true = torch.cat([g.flatten() for g in self.true_grads(x, y)])
            out["grad_cosine"] = F.cosine_similarity(est, true, dim=0).detach()
        self.steps += 1
        self.opt.step()
        return out

    def state(self):
        return {**super().state(), "steps": self.steps}

    def load_state(self, st):
        super().load_state(st)
        self.steps = st["steps"]
