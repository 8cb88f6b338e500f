"""Mixup (Zhang et al., 2018, arXiv 1710.09412), as SemiFL's clients use it on pseudo-labelled
images (Diao et al., NeurIPS 2022, arXiv 2106.01432: the "mix" loss beside the "fix" one).

Each image is mixed with another image of its batch, ``λ·x + (1 − λ)·x[perm]``, and its target is
the same mix of the two targets; one λ ~ Beta(α, α) per batch, as SemiFL draws it.  The draws come
from a generator the caller seeds; the mixing itself is a pure function.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def mix_draw(rows: int, alpha: float, g: torch.Generator) -> tuple[float, Tensor]:
    """λ ~ Beta(``alpha``, ``alpha``) and a permutation of ``rows``, both drawn from ``g``."""
    # torch's Beta sampler takes no generator: a numpy generator seeded from ``g`` draws λ
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return lam, torch.randperm(rows, generator=g)


def mixup(x: Tensor, targets: Tensor, lam: float, perm: Tensor) -> tuple[Tensor, Tensor]:
    """(``λ·x + (1 − λ)·x[perm]``, ``λ·t + (1 − λ)·t[perm]``): rows of ``x`` (N, ...) and their
    ``targets`` (N, classes: class probabilities or one-hot) mixed by the same λ."""
    perm = perm.to(x.device)
    return lam * x + (1.0 - lam) * x[perm], lam * targets + (1.0 - lam) * targets[perm.to(targets.device)]
