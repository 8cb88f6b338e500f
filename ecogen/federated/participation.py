"""Which clusters of an edge take part in a round (``hfsl.clusters_per_round``), seeded.

An edge may have many more clusters than a round can afford (1,000 per edge, 10 a round): each
round draws ``clusters_per_round`` of them, uniformly without replacement, as Flower's server
samples ``fraction_fit`` of its clients.  The draw depends on the edge's seed and the round only
— the same run draws the same clusters, a rerun resumed from a round checkpoint too — and a
draw of its own (salt 3), so it does not move the fault draws (salts 1 and 2,
:mod:`ecogen.federated.faults`) of the clusters drawn.  Where every cluster takes part (the
default) there is no draw: the round loop keeps one client per cluster for the whole run, as
before sampling existed.
"""

from __future__ import annotations

import torch

from ecogen.config.params import HfslParams


def samples(cfg: HfslParams, population: int) -> bool:
    """Whether an edge of ``population`` clusters draws its rounds' participants."""
    return cfg.clusters_per_round is not None and cfg.clusters_per_round < population


def per_round(cfg: HfslParams, population: int) -> int:
    """Clusters of such an edge that take part in a round."""
    return min(cfg.clusters_per_round or population, population)


def drawn(seed: int, r: int, population: int, cfg: HfslParams) -> list[int]:
    """The clusters (numbers in ``range(population)``, ascending) that take part in round ``r``."""
    if not samples(cfg, population):
        return list(range(population))
    g = torch.Generator().manual_seed((seed * 1_000_003 + r * 7919 + 3) % (2**63))
    return sorted(torch.randperm(population, generator=g)[: per_round(cfg, population)].tolist())
