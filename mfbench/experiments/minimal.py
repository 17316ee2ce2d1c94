"""Minimal hand-written training steps: the practical limit `mfbench speed --vs-minimal` times each rule's
runner step against (issue 17), one per rule of `MINIMAL`.

Each is its rule's maths at the rule's default options, written as plain tensors and functional ops on
copies of the rule's parameters, with the run's optimizer (one per layer where the rule keeps one per
layer): no modules, hooks, activation sites or reported-loss dicts. sff runs on CNNs (it needs
convolutional blocks), the others on MLPs. tests/test_speed.py checks that each gives its rule's
parameters after a few steps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (rule, options) that have a minimal step; `mfbench speed --vs-minimal` times each against the runner
VARIANTS = [("bp", {}), *[("mf", {"update": u}) for u in ("per_layer", "joint", "batched")],
            ("ff", {}), ("fa", {}), ("dfa", {}), ("fg", {}), ("lbp", {}), ("sff", {})]
MINIMAL = tuple(f"{a}[{o['update']}]" if o else a for a, o in VARIANTS)  # their labels (`label`)


def label(rule) -> str:
    """The rule as the comparison names it: MF with the update it takes."""
    return f"mf[{rule.opts['update']}]" if rule.name == "mf" else rule.name


def _refusal(rule) -> str | None:
    """Why `rule`'s configuration is not one a minimal step covers (None: it is)."""
    o, arch = rule.opts, rule.cfg.arch
    if label(rule) not in MINIMAL:
        return "no minimal step"
    if rule.cfg.schedule != "simultaneous":
        return f"schedule {rule.cfg.schedule}"
    if arch != ("cnn" if rule.name == "sff" else "mlp"):
        return f"arch {arch}"
    if rule.name == "sff" and (o["granularity"], o["aux_kernel"], o["loss"], o["norm"]) != ("block", 1, "ce", "layer"):
        return "sff off its default options"
    if rule.name == "mf" and (rule.input_proj is not None or not o["learn_projection"]):
        return "mf with an input projection or frozen projections"
    if rule.name == "fa" and o["local"] != "none":
        return "fa with local losses"
    if rule.name == "lbp" and o["frozen"]:
        return "lbp frozen"
    if rule.name == "fg" and (o["perturb"], o["local"], o["directions"], o["cosine_every"]) \
            != ("activity", "greedy", 1, 0):
        return "fg off its default options"
    if rule.name == "ff" and (o["goodness"] != "mean" or o["norm"] != "rms" or o["negatives"] != "random"
                              or o["peer_norm"] or o["label_value"] != "max" or o["readout_from_layer"]
                              or not o["readout"]):
        return "ff off its default options"
    return None


def _layer(block) -> nn.Module:
    """The one weighted layer of an MLP or CNN block (Linear or Conv2d, or its FA twin)."""
    (m,) = [m for m in block.modules() if getattr(m, "weight", None) is not None]
    return m


def rule_params(rule) -> list:
    """The parameters `minimal_step` copies, in its order: hidden weights and biases, then the rule's
    heads (BP: head; MF: each M_i; FF: each readout; SFF: each aux conv; FA/DFA/FG/LBP: final head,
    local heads)."""
    ps = [p for blk in rule.model.blocks for p in (_layer(blk).weight, _layer(blk).bias)]
    if rule.name == "mf":
        return ps + [p[-1].weight for p in rule.projections]
    if rule.name == "ff":
        return ps + [p for r in rule.readouts for p in (r.weight, r.bias)]
    if rule.name == "sff":
        return ps + [p for units in rule.aux for a in units for p in (a.weight, a.bias)]
    heads = [rule.head[-1]] if rule.name == "bp" else [rule.head, *rule.local_heads]
    return ps + [p for h in heads for p in (h.weight, h.bias)]


def minimal_step(rule):
    """A hand-written step of `rule`'s maths on copies of its parameters. Returns step(x, y) -> loss;
    step.params lists the copies in the order `rule_params(rule)` does."""
    why = _refusal(rule)
    if why:
        raise ValueError(f"the minimal step covers {', '.join(MINIMAL)} at their default options (sff on CNNs, "
                         f"the others on MLPs), not {label(rule)}: {why}")
    ws = [t.detach().clone().requires_grad_() for t in rule_params(rule)]
    cfg, d = rule.cfg, len(rule.model.blocks)

    def opt(ps):
        fused = {"fused": True} if ps[0].is_cuda and cfg.fused_optimizer else {}
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(cfg.optimizer)
        if cls is None:
            return torch.optim.SGD(ps, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, **fused)
        return cls(ps, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)

    what = label(rule)
    make = {"bp": _minimal_bp, "ff": _minimal_ff, "fg": _minimal_fg, "sff": _minimal_sff,
            "mf[per_layer]": _minimal_mf_per_layer}.get(what)
    if make is None:
        make = _minimal_mf if rule.name == "mf" else _minimal_local
    step = make(rule, ws[:2 * d:2], ws[1:2 * d:2], ws[2 * d:], opt)
    step.params = ws
    return step


def _take(o, loss):
    o.zero_grad(set_to_none=True)
    loss.backward()
    o.step()


def _minimal_bp(rule, W, b, head, opt):
    d, o = len(W), opt([*W, *b, *head])

    def step(x, y):
        h = x.flatten(1)
        for i in range(d):
            h = F.relu(F.linear(h, W[i], b[i]))
        loss = F.cross_entropy(F.linear(h, *head), y)
        _take(o, loss)
        return loss.detach()
    return step


def _minimal_mf_per_layer(rule, W, b, M, opt):
    d = len(W)
    opts = [opt([W[i], b[i], M[i]]) for i in range(d)]

    def step(x, y):
        h = x.flatten(1)
        for i in range(d):
            h = F.relu(F.linear(h.detach(), W[i], b[i]))
            loss = F.cross_entropy(F.linear(h, M[i]), y)
            _take(opts[i], loss)
        return loss.detach()
    return step


def _minimal_mf(rule, W, b, M, opt):
    """joint: one backward over the summed layer losses; batched: every G_i from one batched matmul."""
    d, o = len(W), opt([*W, *b, *M])
    batched = label(rule) == "mf[batched]"

    def step(x, y):
        h, acts = x.flatten(1), []
        for i in range(d):
            h = F.relu(F.linear(h.detach(), W[i], b[i]))
            acts.append(h)
        if batched:
            g = torch.bmm(torch.stack(acts), torch.stack(M).transpose(1, 2))
            loss = F.cross_entropy(g.view(-1, g.shape[-1]), y.repeat(d), reduction="none").view(d, -1).mean(1).sum()
        else:
            loss = sum(F.cross_entropy(F.linear(a, m), y) for a, m in zip(acts, M))
        _take(o, loss)
        return loss.detach()
    return step


def _minimal_local(rule, W, b, heads, opt):
    """FA, DFA (hand-written backward: errors through the fixed feedback matrices) and LBP (autograd)."""
    d, o = len(W), opt([*W, *b, *heads])
    Wh, bh, local = heads[0], heads[1], list(zip(heads[2::2], heads[3::2]))
    if rule.name == "lbp":
        greedy = rule.opts["local"] == "greedy"

        def step(x, y):
            h, loss = x.flatten(1), 0
            for i in range(d):
                h = F.relu(F.linear(h.detach() if greedy else h, W[i], b[i]))
                loss = loss + F.cross_entropy(F.linear(h, *local[i]), y)
            loss = loss + F.cross_entropy(F.linear(h.detach(), Wh, bh), y)
            _take(o, loss)
            return loss.detach()
        return step

    fb = [blk[-2].feedback for blk in rule.model.blocks] + [rule.head.feedback] if rule.name == "fa" \
        else [rule.feedback(i) for i in range(d)]
    eye = torch.eye(rule.num_classes, device=W[0].device)

    def err(logits, y):  # dCE/dlogits, mean over the batch
        return (logits.softmax(-1) - eye[y]) / len(y)

    @torch.no_grad()
    def step(x, y):
        hs = [x.flatten(1)]
        for i in range(d):
            hs.append(F.relu(F.linear(hs[-1], W[i], b[i])))
        logits = F.linear(hs[-1], Wh, bh)
        e = err(logits, y)
        grads = {}
        for i, (lw, lb) in enumerate(local):  # the local heads: probes on detached features
            ei = err(F.linear(hs[i + 1], lw, lb), y)
            grads[lw], grads[lb] = ei.T @ hs[i + 1], ei.sum(0)
        grads[Wh], grads[bh] = e.T @ hs[-1], e.sum(0)
        delta = e @ fb[-1] if rule.name == "fa" else None
        for i in reversed(range(d)):
            if rule.name == "dfa":
                delta = e @ fb[i]
            delta = delta * (hs[i + 1] > 0)
            grads[W[i]], grads[b[i]] = delta.T @ hs[i], delta.sum(0)
            if rule.name == "fa" and i:
                delta = delta @ fb[i]
        for p, g in grads.items():
            p.grad = g
        o.step()
        return F.cross_entropy(logits, y)
    return step


def _minimal_ff(rule, W, b, readouts, opt):
    """Forward-Forward at its defaults: mean goodness, rms norm, random wrong labels, the readout step."""
    d, c, thr = len(W), rule.num_classes, rule.opts["threshold"]
    opts = [opt([W[i], b[i]]) for i in range(d)]
    ro = opt(readouts)
    eye = torch.eye(c, device=W[0].device)

    def overlay(x, labels):
        x = x.flatten(1)
        v = x.amax(1, keepdim=True)
        code = v.expand(-1, c) / c if labels is None else eye[labels] * v
        return torch.cat([code, x[:, c:]], 1)

    def norm(h):
        return h / (h.pow(2).mean(1, keepdim=True).sqrt() + 1e-8)

    def step(x, y):
        n = len(y)
        neg = (y + torch.randint(1, c, y.shape, device=y.device)) % c
        h = torch.cat([overlay(x, y), overlay(x, neg)])
        for i in range(d):
            a = F.relu(F.linear(norm(h).detach(), W[i], b[i]))
            z = a.pow(2).mean(1) - thr
            loss = F.softplus(torch.cat([-z[:n], z[n:]])).mean()
            _take(opts[i], loss)
            h = a.detach()
        with torch.no_grad():
            h, feats = overlay(x, None), []
            for i in range(d):
                h = F.relu(F.linear(norm(h), W[i], b[i]))
                feats.append(norm(h))
        logits = sum(F.linear(f, readouts[2 * i], readouts[2 * i + 1]) for i, f in enumerate(feats))
        _take(ro, F.cross_entropy(logits, y))
        return loss.detach()
    return step


def _minimal_fg(rule, W, b, heads, opt):
    """LG-FG-A on an MLP (one patch, one group): one random direction u_i per hidden pre-activation;
    layer i's weights get (dL_i/da_i . t_i) u_i relu'(z_i) through that layer alone, t_i = u_i relu'(z_i)
    the tangent at its output; the heads their exact gradients on detached features."""
    d, o = len(W), opt([*W, *b, *heads])
    Wh, bh, local = heads[0], heads[1], list(zip(heads[2::2], heads[3::2]))

    def step(x, y):
        us = [torch.randn(len(x), w.shape[0], device=x.device) for w in W]  # drawn before the forward, as the rule does
        with torch.no_grad():
            hs, active = [x.flatten(1)], []
            for i in range(d):
                z = F.linear(hs[-1], W[i], b[i])
                active.append(z > 0)
                hs.append(F.relu(z))
        leaves = [h.requires_grad_() for h in hs[1:]]
        final = hs[-1].detach().requires_grad_()
        loss = sum(F.cross_entropy(F.linear(a, lw, lb), y) for a, (lw, lb) in zip(leaves, local)) \
            + F.cross_entropy(F.linear(final, Wh, bh), y)
        o.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for i in range(d):
                t = us[i] * active[i]
                est = (t * leaves[i].grad).sum(1, keepdim=True) * us[i] * active[i]
                W[i].grad, b[i].grad = est.T @ hs[i], est.sum(0)
        o.step()
        return loss.detach()
    return step


def _minimal_sff(rule, W, b, aux, opt):
    """SFF at its defaults on a CNN: per block, conv + ReLU (+ average pool), class goodness = mean
    squared 1x1 aux-conv channel, cross-entropy over it, the block's own optimizer step; the next
    block reads the layer-normalised, detached output."""
    blocks = rule.model.blocks
    for blk in blocks:
        kinds = [type(m) for m in blk]
        if kinds not in ([nn.Conv2d, nn.ReLU], [nn.Conv2d, nn.ReLU, nn.AvgPool2d]):
            raise ValueError(f"the minimal sff step covers conv + ReLU (+ AvgPool2d) blocks, not {kinds}")
    conv = [(blk[0].stride, blk[0].padding) for blk in blocks]
    pool = [blk[2].kernel_size if len(blk) == 3 else None for blk in blocks]
    opts = [opt([W[i], b[i], aux[2 * i], aux[2 * i + 1]]) for i in range(len(W))]

    def step(x, y):
        h = x
        for i in range(len(W)):
            a = F.relu(F.conv2d(h, W[i], b[i], *conv[i]))
            if pool[i] is not None:
                a = F.avg_pool2d(a, pool[i])
            loss = F.cross_entropy(F.conv2d(a, aux[2 * i], aux[2 * i + 1]).pow(2).mean((2, 3)), y)
            _take(opts[i], loss)
            with torch.no_grad():
                h = F.layer_norm(a, a.shape[1:])
        return loss.detach()
    return step
