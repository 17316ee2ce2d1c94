"""Activation sites: where the local rules (lbp, fa, dfa, fg) reach into a network.

Every hidden nonlinearity those rules train through is an `Act`, a ReLU that behaves as a
plain ReLU unless a `Session` is open on its network (`with sites(net, Session(...))`). Inside
one it records its input (the pre-activation) and output, in call order, may add a
perturbation to its input (forward gradient, activity perturbation), and may `cut` its
output: reverse-mode gradients stop there while forward-mode tangents pass, so a backward
from one layer's activity reaches that layer's weights only, and one `jvp` still sees the
whole network.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn


class Cut(torch.autograd.Function):
    """Identity that passes forward-mode tangents and no reverse-mode gradient."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return None

    @staticmethod
    def jvp(ctx, tangent):
        return tangent.view_as(tangent)  # a view, as the forward's output is (forward-mode AD requires it)


@dataclass
class Session:
    noise: list[torch.Tensor] | None = None  # per site, added to its pre-activation (call order)
    cut: bool = False
    # A cut for reverse mode only (no jvp runs through it): the output is detached, so the layers
    # and heads that read it do not compute an input gradient that the cut would then drop (DFA).
    reverse_only: bool = False
    pre: list[torch.Tensor] = field(default_factory=list)  # pre-activations, call order
    post: list[torch.Tensor] = field(default_factory=list)  # outputs before any cut
    acts: list["Act"] = field(default_factory=list)


class Act(nn.Module):
    """ReLU and activation site. `grouped`: the units belong to one channel group each
    (channel mixing); False for token mixing, whose units serve every group of their patch."""

    def __init__(self, grouped: bool = True):
        super().__init__()
        self.grouped = grouped
        self.block = 0  # index of the stack's block it sits in (set by the rule that uses the sites)
        self.session: Session | None = None

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        s = self.session
        if s is None:
            return torch.relu(a)
        i = len(s.pre)
        s.pre.append(a)
        s.acts.append(self)
        if s.noise is not None:
            a = a + s.noise[i]
        h = torch.relu(a)
        s.post.append(h)
        if not s.cut:
            return h
        return h.detach() if s.reverse_only else Cut.apply(h)


@contextmanager
def sites(net: nn.Module, session: Session):
    acts = [m for m in net.modules() if isinstance(m, Act)]
    for m in acts:
        m.session = session
    try:
        yield session
    finally:
        for m in acts:
            m.session = None


def relu_to_act(net: nn.Module) -> None:
    """Replace every nn.ReLU in `net` by an Act (parameter-free: the network is unchanged)."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.ReLU):
            setattr(net, name, Act())
        else:
            relu_to_act(child)
