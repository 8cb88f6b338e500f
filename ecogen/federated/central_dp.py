"""Central DP at the edge: DP-FedAvg (McMahan, Ramage, Talwar & Zhang, 2018, "Learning
Differentially Private Recurrent Language Models", arXiv 1710.06963), ``hfsl.dp_mechanism:
central``.

The edge clips each cluster's update Δ_k = w_k − w₀ to L2 norm C (``hfsl.clip_norm``), sums them
weighted by their FedAvg weights n_k, adds N(0, (σ·C·max_k n_k)²) to every coordinate of the sum
and divides by the total weight.  A cluster's clipped update present or replaced by zero (the
add/remove adjacency of DP-FedAvg and DP-SGD, with the denominator fixed: who takes part and their
labelled counts are public) moves the weighted sum by at most C·max_k n_k, so each round's
release is the Gaussian mechanism with noise multiplier σ for every cluster; σ is the smallest for
which ``hfsl.rounds`` releases are (``dp_epsilon``, ``dp_delta``)-DP
(:func:`ecogen.federated.privacy.noise_multiplier`, the same RDP accountant as the upload noise).
No amplification is claimed where rounds draw their clusters: every round counts for every cluster.

The edge's own update (its own data; it never crosses a link) joins the sum as it is, unclipped
and with its weight: the edge is the trusted aggregator here, and what is protected is each
cluster's contribution to the modules the edge releases (to the clusters, the cloud, anyone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ecogen.config.params import HfslParams
from ecogen.federated.aggregate import Update, clip_update

State = dict[str, Tensor]


def dp_fedavg(
    clusters: Sequence[Update],
    trusted: Sequence[Update],
    start: State,
    clip: float,
    sigma: float,
    g: torch.Generator,
) -> State:
    """w₀ + (Σ_k n_k·clip(Δ_k, C) + Σ_e n_e·Δ_e + N(0, (σ·C·max_k n_k)²)) / (Σ_k n_k + Σ_e n_e):
    ``clusters`` clipped and noised, ``trusted`` (the edge's own) as they are."""
    everyone = list(clusters) + list(trusted)
    if not everyone:
        raise ValueError("DP-FedAvg needs at least one update")
    total = float(sum(n for _, n in everyone))
    scale = sigma * clip * max((n for _, n in clusters), default=0)
    clipped = [(clip_update(s, start, clip), n) for s, n in clusters] + list(trusted)
    out = {}
    for key, base in start.items():
        acc = torch.zeros_like(base, dtype=torch.float64)
        for state, n in clipped:
            acc += (state[key].double() - base.double()) * n
        noise = torch.randn(base.shape, generator=g, dtype=torch.float64) * scale
        out[key] = (base.double() + (acc + noise.to(acc.device)) / total).to(base.dtype)
    return out


Merge = Callable[[Sequence[Update], Sequence[Update], State, int, int], State]


def central_noise(cfg: HfslParams) -> Merge | None:
    """The edge's DP-FedAvg for ``cfg`` — (clusters' updates, the edge's own, delivered modules,
    edge seed, round) → the round's modules — or None where central DP is off."""
    if cfg.dp != "central" or not cfg.dp_epsilon:
        return None
    from ecogen.federated import privacy  # the accountant library loads only where DP is on

    sigma = privacy.noise_multiplier(cfg.dp_epsilon, cfg.rounds, cfg.dp_delta)

    def merge(clusters: Sequence[Update], own: Sequence[Update], start: State, seed: int, r: int) -> State:
        g = torch.Generator().manual_seed(seed * 1_000_003 + r * 7919 + 104_729)
        return dp_fedavg(clusters, own, start, cfg.clip_norm, sigma, g)

    return merge
