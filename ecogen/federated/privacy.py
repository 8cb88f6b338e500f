"""Differentially private uploads: each participant clips its update and adds Gaussian noise
before it leaves the device (local DP, the Gaussian mechanism; Abadi et al., 2016, arXiv
1607.00133, at the level of a round's update).

With ``hfsl.dp_epsilon`` = ε, every upload is w₀ + clip(w − w₀, C) + N(0, σ²C²) per coordinate,
C = ``hfsl.clip_norm``.  σ is the smallest noise multiplier for which ``hfsl.rounds`` such releases
of one participant's update are (ε, ``hfsl.dp_delta``)-DP, by the Rényi-DP accountant of Google's
``dp-accounting`` library (Mironov, 2017).  A participant's whole update is one release per
round (no subsampling), so the guarantee covers everything a participant ever uploads.
"""

from __future__ import annotations

from functools import cache

import dp_accounting
import torch
from dp_accounting import rdp
from torch import Tensor

from ecogen.federated.aggregate import clip_update


def epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """ε of ``rounds`` Gaussian releases with noise multiplier σ (sensitivity 1), at ``delta``."""
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier), rounds)
    return float(accountant.get_epsilon(delta))


@cache
def noise_multiplier(target: float, rounds: int, delta: float) -> float:
    """The smallest σ (to 0.1 %) whose ``rounds`` releases are (``target``, ``delta``)-DP."""
    low, high = 1e-3, 1.0
    while epsilon(high, rounds, delta) > target:
        high *= 2
    while high - low > 1e-3 * high:
        mid = (low + high) / 2
        low, high = (mid, high) if epsilon(mid, rounds, delta) > target else (low, mid)
    return high


def privatize(
    state: dict[str, Tensor], start: dict[str, Tensor], clip: float, sigma: float, g: torch.Generator
) -> dict[str, Tensor]:
    """The update clipped to norm ``clip`` with N(0, (σ·clip)²) added to every coordinate."""
    clipped = clip_update(state, start, clip)
    return {
        k: v + torch.randn(v.shape, generator=g, dtype=v.dtype) * (sigma * clip) for k, v in clipped.items()
    }
