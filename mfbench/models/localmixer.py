"""LocalMixer (Ren, Kornblith, Liao, Hinton; arXiv 2210.03310): an MLP-Mixer built for local learning.

The image is cut into patches x patches non-overlapping patches (tokens). Block 0 mixes
channels only; every later block first mixes tokens (one linear layer over the token axis),
then channels: a dense layer, then a layer connected only within each of `groups` channel
groups, added to the block's input (residual) before the ReLU. LayerNorm without affine
parameters sits before and after every linear layer, per patch (and per group for the grouped
layer). Block outputs are (batch, patches^2, channels). Heads belong to the rules: a local head
per block reads the block output normalised per patch and group, averaged over patches; the
final head reads it averaged over patches, then normalised.

Parameter counts equal the official code's (google-research `local_forward_gradient`), heads
included: S/1/1 on MNIST 271,892 (paper 272K), M/1/16 on MNIST 429,076 (429K), M/8/16 on
CIFAR-10 918,770 (919K).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.errors import ConfigError
from mfbench.models.stack import LayerStack
from mfbench.sites import Act

# The paper's Table 2 names (size / patches per side / groups) -> blocks and channels.
PAPER_CONFIGS = {"S/1/1": dict(depth=1, width=256, patches=1, groups=1),
                 "M/1/16": dict(depth=1, width=512, patches=1, groups=16),
                 "M/8/16": dict(depth=4, width=512, patches=8, groups=16)}


def name(depth: int, width: int, patches: int, groups: int) -> str:
    """The paper's name of a configuration, else `<blocks>x<channels>/<patches>/<groups>`."""
    cfg = dict(depth=depth, width=width, patches=patches, groups=groups)
    return next((n for n, c in PAPER_CONFIGS.items() if c == cfg), f"{depth}x{width}/{patches}/{groups}")


def ln(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:])


class GroupLinear(nn.Module):
    """groups independent linear maps: (..., G, c_in) -> (..., G, c_out)."""

    def __init__(self, groups: int, c_in: int, c_out: int):
        super().__init__()
        bound = 1 / math.sqrt(c_in)  # nn.Linear's default init, per group
        self.weight = nn.Parameter(torch.empty(groups, c_in, c_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, c_out).uniform_(-bound, bound))
        self.fg_groups = groups  # forward gradient: parameters are grouped along dim 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...gc,gcd->...gd", x, self.weight) + self.bias


class MixerBlock(nn.Module):
    def __init__(self, d_in: int, channels: int, per_side: int, groups: int, first: bool):
        super().__init__()
        self.first = first  # block 0 cuts its input images into patches and has no token mixing
        self.per_side = per_side
        self.groups = groups
        if not first:
            self.token = nn.Linear(per_side ** 2, per_side ** 2)
            self.token_act = Act(grouped=False)
        self.dense = nn.Linear(d_in, channels)
        self.dense.fg_groups = groups  # its output units feed one group each
        self.dense_act = Act()
        self.group = GroupLinear(groups, channels // groups, channels // groups)
        self.group_act = Act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = patches(x, self.per_side)
        b, p, d = x.shape
        h = x
        if not self.first:
            t = self.token(ln(h).transpose(1, 2)).transpose(1, 2)  # mixes tokens, per channel
            h = self.token_act(ln(t))
        h = self.dense_act(ln(self.dense(ln(h))))
        z = ln(self.group(ln(h.view(b, p, self.groups, -1))))
        if not self.first:
            z = z + x.view_as(z)
        return self.group_act(z).view(b, p, -1)


def patches(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, k*k, C*(H/k)*(W/k)): non-overlapping patches as tokens."""
    b, c, h, w = x.shape
    x = x.view(b, c, k, h // k, k, w // k).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, k * k, -1)


class LocalReadout(nn.Module):
    """A local head's input: per patch and group normalised, averaged over patches."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, d = x.shape
        return ln(x.view(b, p, self.groups, -1)).mean(1).reshape(b, d)


class FinalReadout(nn.Module):
    """The final head's input: averaged over patches, then normalised."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ln(x.mean(1))


def localmixer(in_shape: tuple[int, ...], depth: int, width: int, patches_per_side: int, groups: int) -> LayerStack:
    c, h, w = in_shape
    if h % patches_per_side or w % patches_per_side:
        allowed = [k for k in range(1, min(h, w) + 1) if h % k == 0 and w % k == 0]
        raise ConfigError(f"patches={patches_per_side} does not divide the {h}x{w} images; allowed: "
                          f"{', '.join(map(str, allowed))}")
    if width % groups:
        raise ConfigError(f"groups={groups} does not divide width={width}; allowed: divisors of the width")
    tokens = patches_per_side ** 2
    d_in = c * (h // patches_per_side) * (w // patches_per_side)
    blocks = [MixerBlock(d_in if i == 0 else width, width, patches_per_side, groups, i == 0) for i in range(depth)]
    return LayerStack(blocks, [tokens * width] * depth, in_shape, readout=FinalReadout(),
                      local_readout=LocalReadout(groups), readout_features=width, local_features=[width] * depth,
                      patches=tokens, groups=groups)
