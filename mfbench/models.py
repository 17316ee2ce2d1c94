"""MLP and CNN as explicit layer stacks.

A `LayerStack` is a list of blocks plus the flattened feature size after each, so a
learning rule can drive it block by block (local rules) or end to end (backprop)
without knowing which architecture it holds. Heads (a linear classifier for BP, the
projections M_i for Mono-Forward, ...) belong to the rule, not the model; the stack says
what a head reads: `readout` (final head) and `local_readout` (a head on any block), both
flattening for MLP/CNN. LocalMixer (mfbench.localmixer) is the third architecture.
"""
from __future__ import annotations

import torch
from torch import nn


class LayerStack(nn.Module):
    def __init__(self, blocks: list[nn.Module], out_features: list[int], in_shape: tuple[int, ...], *,
                 readout: nn.Module | None = None, local_readout: nn.Module | None = None,
                 readout_features: int | None = None, local_features: list[int] | None = None,
                 patches: int = 1, groups: int = 1):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.out_features = out_features
        self.in_shape = tuple(in_shape)
        self.readout = readout or nn.Flatten()  # parameter-free
        self.local_readout = local_readout or nn.Flatten()
        self.readout_features = readout_features or out_features[-1]
        self.local_features = local_features or list(out_features)
        self.patches, self.groups = patches, groups  # tokens and channel groups of each block output

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x

    def activations(self, x: torch.Tensor, detach: bool = False) -> list[torch.Tensor]:
        """Each block's output; with detach=True no graph links one block to the next."""
        acts = []
        for b in self.blocks:
            x = b(x.detach() if detach else x)
            acts.append(x)
        return acts


def mlp(in_shape: tuple[int, ...], depth: int, width: int) -> LayerStack:
    """depth x (Linear(width) + ReLU); the first block flattens its input."""
    d_in = 1
    for s in in_shape:
        d_in *= s
    blocks: list[nn.Module] = []
    for i in range(depth):
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU()]
        blocks.append(nn.Sequential(*layers))
    return LayerStack(blocks, [width] * depth, in_shape)


def cnn(in_shape: tuple[int, ...], channels: list[int]) -> LayerStack:
    """len(channels) x (Conv3x3 + ReLU + AvgPool2), pooling while the map is >= 2 wide.

    Blocks return feature maps; heads flatten them (the design's default: M attaches to
    the flattened post-pool map).
    """
    c, h, w = in_shape
    blocks: list[nn.Module] = []
    feats: list[int] = []
    for ch in channels:
        layers: list[nn.Module] = [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU()]
        if min(h, w) >= 2:
            layers.append(nn.AvgPool2d(2))
            h, w = h // 2, w // 2
        blocks.append(nn.Sequential(*layers))
        c = ch
        feats.append(ch * h * w)
    return LayerStack(blocks, feats, in_shape)


def he_init_(model: LayerStack) -> LayerStack:
    """He (Kaiming-normal, fan-in, ReLU gain) weights and zero biases for every layer of the stack:
    each feeds a ReLU. Drawn from a forked RNG, so the rule's heads, built next from the global RNG,
    get the same values as under the default init: at one seed only the stack's init differs."""
    with torch.random.fork_rng(devices=[]):
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return model



def build(arch: str, in_shape: tuple[int, ...], *, depth: int, width: int, channels: list[int],
          init: str = "default", patches: int = 1, groups: int = 1) -> LayerStack:
    from mfbench.config import INITS, ConfigError

    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; allowed: {', '.join(INITS)}")
    if arch == "mlp":
        model = mlp(in_shape, depth, width)
    elif arch == "cnn":
        model = cnn(in_shape, channels)
    elif arch == "localmixer":
        from mfbench.localmixer import localmixer  # imports LayerStack from here

        model = localmixer(in_shape, depth, width, patches, groups)
    else:
        raise ConfigError(f"unknown arch {arch!r}; allowed: mlp, cnn, localmixer")
    return he_init_(model) if init == "he" else model
