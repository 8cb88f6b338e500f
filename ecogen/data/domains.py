"""Domains: deterministic, seeded transforms of uint8 image batches, one per edge server.

Each edge sees the same kind of base images in its own style (rotated, inverted, blurred, noisy,
mirrored), which is the domain shift that edge fine-tuning has to close.  Every transform maps
uint8 (N, C, H, W) to uint8 (N, C, H, W) of the same shape and, for a fixed ``seed``, the same
values, so prepared data is reproducible bit for bit.  Only ``noise`` actually draws random
numbers; the others take ``seed`` to share one signature.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

DomainTransform = Callable[[Tensor, int], Tensor]

NOISE_STD = 25.0  # in uint8 grey levels: visible, yet the class stays recognisable


def identity(x: Tensor, seed: int) -> Tensor:
    return x.clone()


def rotate90(x: Tensor, seed: int) -> Tensor:
    """Quarter turn counter-clockwise (images are square, so the shape is kept)."""
    return torch.rot90(x, k=1, dims=(-2, -1)).contiguous()


def invert(x: Tensor, seed: int) -> Tensor:
    """Inverted contrast: dark clothes on a light background."""
    return 255 - x


def flip(x: Tensor, seed: int) -> Tensor:
    """Horizontal mirror."""
    return torch.flip(x, dims=(-1,))


def blur(x: Tensor, seed: int) -> Tensor:
    """3×3 Gaussian blur (binomial kernel [1, 2, 1]ᵀ[1, 2, 1] / 16), replicate-padded borders."""
    c = x.shape[1]
    k1 = torch.tensor([1.0, 2.0, 1.0])
    kernel = (torch.outer(k1, k1) / 16.0).expand(c, 1, 3, 3)  # one kernel per channel
    padded = F.pad(x.float(), (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernel, groups=c).round().clamp(0, 255).to(torch.uint8)


def noise(x: Tensor, seed: int) -> Tensor:
    """Additive Gaussian noise (std ``NOISE_STD`` grey levels) from a generator seeded by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(x.shape, generator=gen) * NOISE_STD
    return (x.float() + eps).round().clamp(0, 255).to(torch.uint8)


# Keys match DataParams.domains (ecogen.config.params.DOMAIN_NAMES); a test keeps them in step.
DOMAINS: dict[str, DomainTransform] = {
    "identity": identity,
    "rotate90": rotate90,
    "invert": invert,
    "blur": blur,
    "noise": noise,
    "flip": flip,
}


def apply_domain(name: str, x: Tensor, seed: int) -> Tensor:
    """Transform ``x`` into domain ``name``; a clear error for a name that is not registered."""
    try:
        transform = DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; known: {sorted(DOMAINS)}") from None
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"domain transforms take uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
    return transform(x, seed)
