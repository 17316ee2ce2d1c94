"""MLP-Mixer (Tolstikhin et al., arXiv 2105.01601) as a layer stack, from timm's own modules.

timm's `MlpMixer` is built and initialised as timm ships it (its own init: xavier-uniform linears,
lecun-normal patch conv), then split: its `PatchEmbed` stem (a conv of kernel = stride = patch size,
flattened to tokens) and its `MixerBlock`s (pre-norm token MLP and channel MLP, each residual; GELU;
LayerNorm eps 1e-6), never re-typed. Block 0 is the stem plus the first MixerBlock (the stem is a
linear map: alone it would be a linear layer with a loss of its own); every later block is one
MixerBlock. Its final norm and classifier are dropped (heads belong to the rules). Block outputs
are tokens x channels, (batch, tokens, hidden).

Heads belong to the rules. What a head reads, final or local alike, is `TokenPool`: LayerNorm per
token without affine parameters, then the mean over tokens -- timm's MlpMixer head (norm, then
global average pool, then Linear) minus the norm's affine, which a linear head absorbs. So BP's
classifier is timm's, and MF's M_i on block i reads the same pooled vector (hidden wide), not the
flattened tokens x hidden map (v2 publishes no readout; pooling is what the Mixer's own head does).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfbench.errors import ConfigError
from mfbench.models.stack import LayerStack

LN_EPS = 1e-6  # timm's MixerBlock norm eps, used by the readout's norm too


class TokenPool(nn.Module):
    """(B, tokens, hidden) -> (B, hidden): parameter-free LayerNorm per token, then the mean over tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=LN_EPS).mean(1)


def name(patch_size: int, hidden: int, depth: int, token_mlp: int, channel_mlp: int) -> str:
    """The CSV's arch_detail, e.g. p4-h128x8-t64-c512."""
    return f"p{patch_size}-h{hidden}x{depth}-t{token_mlp}-c{channel_mlp}"


def mixer(in_shape: tuple[int, ...], depth: int, hidden: int, patch_size: int, token_mlp: int,
          channel_mlp: int) -> LayerStack:
    from timm.models.mlp_mixer import MlpMixer

    c, h, w = in_shape
    if h % patch_size or w % patch_size:
        allowed = [k for k in range(1, min(h, w) + 1) if h % k == 0 and w % k == 0]
        raise ConfigError(f"patch_size={patch_size} does not divide the {h}x{w} images; allowed: "
                          f"{', '.join(map(str, allowed))}")
    tokens = (h // patch_size) * (w // patch_size)
    # timm sizes each MLP as int(ratio * hidden): a ratio half a unit above the asked width gives exactly it
    ratio = ((token_mlp + 0.5) / hidden, (channel_mlp + 0.5) / hidden)
    net = MlpMixer(num_classes=0, img_size=(h, w), in_chans=c, patch_size=patch_size, num_blocks=depth,
                   embed_dim=hidden, mlp_ratio=ratio)
    mixers = list(net.blocks)
    got = (mixers[0].mlp_tokens.fc1.out_features, mixers[0].mlp_channels.fc1.out_features)
    if got != (token_mlp, channel_mlp):  # timm's sizing rule changed: fail rather than train another net
        raise ConfigError(f"timm built token/channel MLPs of {got}, asked for {(token_mlp, channel_mlp)}")
    blocks = [nn.Sequential(net.stem, mixers[0]), *mixers[1:]]
    return LayerStack(blocks, [tokens * hidden] * depth, in_shape, out_shapes=[(tokens, hidden)] * depth,
                      readout=TokenPool(), local_readout=TokenPool(), readout_features=hidden,
                      local_features=[hidden] * depth, patches=tokens)
