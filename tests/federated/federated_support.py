"""What the federated tests share: a tiny ViT config and synthetic clusters."""

from __future__ import annotations

import torch

from ecogen.data.prepared import UNLABELLED, Split
from ecogen.models.vit import ViTConfig

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=2, heads=2, num_classes=3)


def cluster(seed: int, n: int = 24, labelled: int = 8) -> Split:
    """``n`` random 8×8 images with random labels, only the first ``labelled`` of them kept."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n,), generator=g)
    y[labelled:] = UNLABELLED
    return Split(x, y)
