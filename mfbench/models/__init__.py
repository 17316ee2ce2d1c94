"""MLP, CNN and torchvision networks as explicit layer stacks.

A `LayerStack` is a list of blocks plus the flattened feature size after each, so a
learning rule can drive it block by block (local rules) or end to end (backprop)
without knowing which architecture it holds. Heads (a linear classifier for BP, the
projections M_i for Mono-Forward, ...) belong to the rule, not the model; the stack says
what a head reads: `readout` (final head) and `local_readout` (a head on any block), both
flattening for MLP/CNN. LocalMixer (mfbench.models.localmixer) is the third architecture; the
MLP-Mixer (mfbench.models.mixer, timm's modules) the fourth.
`LayerStack` itself lives in mfbench.models.stack, which the architectures import (no cycle).

ResNet-18 and MobileNetV3 are torchvision's own modules, split into the stem plus one
block per residual / inverted-residual block (never re-typed here).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from mfbench.errors import ConfigError
from mfbench.models.localmixer import localmixer, name
from mfbench.models.mixer import mixer
from mfbench.models.mixer import name as mixer_name
from mfbench.models.stack import LayerStack

__all__ = ["LayerStack", "INITS", "TORCHVISION", "build", "columns", "cnn", "he_init_", "mlp", "torchvision_stack"]
INITS = ("default", "he")  # default: PyTorch's layer init; he: kaiming_normal_ (ReLU gain), biases 0


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
    shapes: list[tuple[int, int, int]] = []
    for ch in channels:
        layers: list[nn.Module] = [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU()]
        if min(h, w) >= 2:
            layers.append(nn.AvgPool2d(2))
            h, w = h // 2, w // 2
        blocks.append(nn.Sequential(*layers))
        c = ch
        shapes.append((ch, h, w))
    return LayerStack(blocks, [ch * h * w for ch, h, w in shapes], in_shape, out_shapes=shapes)


def he_init_(model: LayerStack) -> LayerStack:
    """He (Kaiming-normal, fan-in, ReLU gain) weights and zero biases for every layer of the stack:
    each feeds a ReLU. Drawn from a forked RNG, so the rule's heads, built next from the global RNG,
    get the same values as under the default init: at one seed only the stack's init differs."""
    with torch.random.fork_rng(devices=[]):
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:  # torchvision convs have none
                    nn.init.zeros_(m.bias)
    return model




# --- torchvision networks ------------------------------------------------------------
TORCHVISION = ("resnet18", "mobilenet_v3_small", "mobilenet_v3_large")
# Blocks of each stack (stem + residual / inverted-residual blocks [+ MobileNet's last 1x1 conv]) and its
# widest block at width_mult 1: the CSV's depth / width columns, known without building the net.
_NOMINAL = {"resnet18": (9, 512), "mobilenet_v3_small": (13, 576), "mobilenet_v3_large": (17, 960)}


def _stem_conv(old: nn.Conv2d, in_channels: int, kernel: int, stride: int) -> nn.Conv2d:
    """A fresh stem conv, initialised as torchvision initialises its convs (Kaiming normal, fan out)."""
    conv = nn.Conv2d(in_channels, old.out_channels, kernel, stride, kernel // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def torchvision_stack(arch: str, in_shape: tuple[int, int, int], *, stem: str = "cifar",
                      width_mult: float = 1.0) -> LayerStack:
    """torchvision's `arch`, untrained, as a LayerStack: the stem, then one block per residual
    (ResNet) or inverted-residual (MobileNetV3) block; MobileNetV3's last 1x1 conv is a block of
    its own. Its own classifier is dropped: heads belong to the rule (BP: avgpool + Linear).

    stem='cifar': the usual 32x32 adaptation (ResNet: 3x3 stride-1 stem conv, no max-pool;
    MobileNetV3: stride-1 stem conv), so small images are not cut to 8x8 before the first block;
    stem='torchvision': the ImageNet stem unmodified. Inputs with other than 3 channels get a
    new stem conv of the same shape.
    """
    import torchvision
    from torchvision.ops.misc import Conv2dNormActivation

    c = in_shape[0]
    if arch == "resnet18":
        if width_mult != 1.0:
            raise ConfigError(f"width_mult={width_mult!r}: torchvision's resnet18 has no width multiplier; allowed: 1.0")
        net = torchvision.models.resnet18()
        if stem == "cifar":
            net.conv1, net.maxpool = _stem_conv(net.conv1, c, 3, 1), nn.Identity()
        elif c != 3:
            net.conv1 = _stem_conv(net.conv1, c, 7, 2)
        res = [*net.layer1, *net.layer2, *net.layer3, *net.layer4]
        blocks = [nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), *res]
        cuts = [[]] + [[b.conv2] for b in res]
    elif arch in ("mobilenet_v3_small", "mobilenet_v3_large"):
        net = getattr(torchvision.models, arch)(width_mult=width_mult)
        stride = 1 if stem == "cifar" else 2
        if c != 3:
            net.features[0][0] = _stem_conv(net.features[0][0], c, 3, stride)
        net.features[0][0].stride = (stride, stride)
        blocks = list(net.features)
        # inside an inverted residual, every conv-BN(-activation) after the first starts a layer
        cuts = [[m[0] for m in b.block[1:] if isinstance(m, Conv2dNormActivation)] if hasattr(b, "block") else []
                for b in blocks]
    else:
        raise ConfigError(f"unknown torchvision arch {arch!r}; allowed: {', '.join(TORCHVISION)}")
    shapes = _probe_shapes(blocks, in_shape)
    return LayerStack(blocks, [math.prod(s) for s in shapes], in_shape, out_shapes=shapes, gap_head=True, cuts=cuts)


@torch.no_grad()
def _probe_shapes(blocks: list[nn.Module], in_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each block's output shape, from one forward pass of a zero image in eval mode (BN untouched)."""
    shapes = []
    h = torch.zeros(1, *in_shape)
    for b in blocks:
        b.eval()
        h = b(h)
        b.train()
        shapes.append(tuple(h.shape[1:]))
    return shapes


def columns(cfg) -> dict:
    """The CSV's architecture columns for a run config: arch_detail, depth, width."""
    if cfg.arch == "cnn":
        return {"arch_detail": "c" + "-".join(map(str, cfg.channels)), "depth": len(cfg.channels),
                "width": max(cfg.channels)}
    if cfg.arch == "localmixer":
        return {"arch_detail": name(cfg.depth, cfg.width, cfg.patches, cfg.groups),  # the paper's, e.g. M/8/16
                "depth": cfg.depth, "width": cfg.width}
    if cfg.arch == "mixer":
        return {"arch_detail": mixer_name(cfg.patch_size, cfg.width, cfg.depth, cfg.token_mlp_dim, cfg.channel_mlp_dim),
                "depth": cfg.depth, "width": cfg.width}
    if cfg.arch in _NOMINAL:
        n, w = _NOMINAL[cfg.arch]
        mult = "" if cfg.width_mult == 1.0 else f"-x{cfg.width_mult:g}"
        return {"arch_detail": f"{cfg.arch}-{cfg.stem}{mult}", "depth": n, "width": round(w * cfg.width_mult)}
    return {"arch_detail": f"{cfg.depth}x{cfg.width}", "depth": cfg.depth, "width": cfg.width}


def build(cfg, in_shape: tuple[int, ...]) -> LayerStack:
    """The stack a run config describes (arch and its keys), freshly initialised from torch's RNG;
    `init: he` then re-draws its layers (see he_init_)."""
    if cfg.init not in INITS:
        raise ConfigError(f"unknown init {cfg.init!r}; allowed: {', '.join(INITS)}")
    if cfg.arch == "mlp":
        model = mlp(in_shape, cfg.depth, cfg.width)
    elif cfg.arch == "cnn":
        model = cnn(in_shape, cfg.channels)
    elif cfg.arch == "localmixer":
        model = localmixer(in_shape, cfg.depth, cfg.width, cfg.patches, cfg.groups)
    elif cfg.arch == "mixer":
        model = mixer(in_shape, cfg.depth, cfg.width, cfg.patch_size, cfg.token_mlp_dim, cfg.channel_mlp_dim)
    elif cfg.arch in TORCHVISION:
        model = torchvision_stack(cfg.arch, in_shape, stem=cfg.stem, width_mult=cfg.width_mult)
    else:
        raise ConfigError(f"unknown arch {cfg.arch!r}; allowed: mlp, cnn, localmixer, mixer, {', '.join(TORCHVISION)}")
    return he_init_(model) if cfg.init == "he" else model
