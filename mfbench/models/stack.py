"""The layer stack every architecture builds and every rule drives (see mfbench.models)."""
from __future__ import annotations

import torch
from torch import nn


class LayerStack(nn.Module):
    """Blocks run in order. Besides the flattened size after each block (`out_features`):

    - `out_shapes`: each block's output shape without the batch dimension;
    - `gap_head`: a classifier on this stack pools its last map globally first (torchvision's
      own heads do: avgpool + Linear); False: it flattens the map (the MLP/CNN stacks);
    - `cuts`: per block, the conv layers inside it whose input starts a new layer (after
      the block's first), for rules that train every conv layer on its own.
    """

    def __init__(self, blocks: list[nn.Module], out_features: list[int], in_shape: tuple[int, ...], *,
                 out_shapes: list[tuple[int, ...]] | None = None, gap_head: bool = False,
                 cuts: list[list[nn.Conv2d]] | None = None, readout: nn.Module | None = None,
                 local_readout: nn.Module | None = None, readout_features: int | None = None,
                 local_features: list[int] | None = None, patches: int = 1, groups: int = 1):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.out_features = out_features
        self.in_shape = tuple(in_shape)
        self.out_shapes = out_shapes or [(f,) for f in out_features]
        self.gap_head = gap_head
        self.cuts = cuts or [[] for _ in blocks]
        if gap_head and readout is None:  # torchvision's own classifier pools globally, then Linear
            readout, readout_features = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), self.out_shapes[-1][0]

        self.readout = readout or nn.Flatten()  # parameter-free
        self.local_readout = local_readout or nn.Flatten()
        self.readout_features = readout_features or out_features[-1]
        self.local_features = local_features or list(out_features)
        self.patches, self.groups = patches, groups  # tokens and channel groups of each block output
    def prefix(self, k: int) -> "LayerStack":
        """The first k blocks (shared modules, not copies): the stack as if it ended there."""
        return LayerStack(list(self.blocks[:k]), self.out_features[:k], self.in_shape, out_shapes=self.out_shapes[:k],
                          gap_head=self.gap_head, cuts=self.cuts[:k], local_readout=self.local_readout,
                          local_features=self.local_features[:k], patches=self.patches, groups=self.groups)

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
