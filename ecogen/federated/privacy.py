"""Differentially private uploads: each participant clips its update and adds Gaussian noise
before it leaves the device (local DP, the Gaussian mechanism; Abadi et al., 2016, arXiv
1607.00133, at the level of a round's update).

With ``hfsl.dp_epsilon`` = ε, every upload is w₀ + clip(w − w₀, C) + N(0, σ²C²) per coordinate,
C = ``hfsl.clip_norm``.  σ is the smallest noise multiplier for which ``hfsl.rounds`` such releases
of one participant's update are (ε, ``hfsl.dp_delta``)-DP, by the Rényi-DP accountant of Google's
``dp-accounting`` library (Mironov, 2017).  A participant's whole update is one release per
round (no subsampling), so the guarantee covers everything a participant ever uploads.

The same accountant sets the noise of central DP at the edge (:mod:`ecogen.federated.central_dp`)
and, over Poisson-sampled steps, of example-level DP-SGD (:mod:`ecogen.federated.example_dp`).
"""

from __future__ import annotations

from functools import cache

import dp_accounting
import torch
from dp_accounting import rdp
from torch import Tensor

from ecogen.federated.aggregate import clip_update

# RDP orders for the sampled Gaussian: from 2 up (the library's fractional orders below 2 may fail
# to converge for it, and are never the best order at the ε used here)
SAMPLED_ORDERS = [2 + x / 10 for x in range(100)] + list(range(12, 128))


def epsilon(noise_multiplier: float, rounds: int, delta: float, sample_rate: float = 1.0) -> float:
    """ε of ``rounds`` Gaussian releases with noise multiplier σ (sensitivity 1), at ``delta``;
    each release of a Poisson sample at ``sample_rate`` (the sampled Gaussian mechanism of DP-SGD,
    Mironov, Talwar & Zhang, 2019, arXiv 1908.10530) where it is below 1."""
    event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sample_rate < 1.0:
        accountant = rdp.RdpAccountant(SAMPLED_ORDERS)
        event = dp_accounting.PoissonSampledDpEvent(sample_rate, event)
    else:
        accountant = rdp.RdpAccountant()
    accountant.compose(event, rounds)
    return float(accountant.get_epsilon(delta))


@cache
def noise_multiplier(target: float, rounds: int, delta: float, sample_rate: float = 1.0) -> float:
    """The smallest σ (to 0.1 %) whose ``rounds`` releases (at ``sample_rate``) are
    (``target``, ``delta``)-DP."""
    low, high = 1e-3, 1.0
    while epsilon(high, rounds, delta, sample_rate) > target:
        high *= 2
    while high - low > 1e-3 * high:
        mid = (low + high) / 2
        low, high = (mid, high) if epsilon(mid, rounds, delta, sample_rate) > target else (low, mid)
    return high


def privatize(
    state: dict[str, Tensor], start: dict[str, Tensor], clip: float, sigma: float, g: torch.Generator
) -> dict[str, Tensor]:
    """The update clipped to norm ``clip`` with N(0, (σ·clip)²) added to every coordinate."""
    clipped = clip_update(state, start, clip)
    return {
        k: v + torch.randn(v.shape, generator=g, dtype=v.dtype) * (sigma * clip) for k, v in clipped.items()
    }
