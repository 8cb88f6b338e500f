"""Central training on exactly the labels the federation holds (the clusters' labelled images and,
when the edge joins, the edge's), at the federation's client compute: one learner, PEFT modules.
What labels-only HFSL would reach if federation and splitting cost nothing.  It pools every
cluster's data, so it has no rounds' clusters to draw: ``hfsl.clusters_per_round`` is refused
with it (and with ``centralized``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ecogen.data.prepared import PreparedData, Split, SplitSource
from ecogen.federated.roles import EdgeServer
from ecogen.federated.strategies.base import Strategy
from ecogen.peft.tunable import tunable_state


def pooled_clusters(
    data: PreparedData, domain: str, count: int, oracle: bool, edge: bool, unlabelled: bool = False
) -> Split:
    """The first ``count`` clusters' data in one place (and the edge's labelled set with ``edge``):
    with every true label (``oracle``), else their labelled images (and, with ``unlabelled``, their
    unlabelled ones too, still unlabelled)."""
    xs, ys = [], []
    for k in range(count):
        split = data.cluster(domain, k)
        if oracle:
            xs.append(split.x)
            ys.append(data.oracle_labels(domain, k))
        elif unlabelled:
            xs.append(split.x)
            ys.append(split.y)
        else:
            xs.append(split.x[split.labelled])
            ys.append(split.y[split.labelled])
    if edge:
        own = data.edge(domain)
        xs.append(own.x)
        ys.append(own.y)
    return Split(torch.cat(xs), torch.cat(ys))


class PooledLabels(Strategy):
    title = "Central, the same labels (PEFT)"
    split = False
    pooled = True
    oracle = False  # pool every true label of the clusters' images, not only the held ones
    unlabelled = False  # pool the clusters' unlabelled images too (for the unlabelled loss)

    def participants(
        self, data: PreparedData, domain: str, clusters: Sequence[SplitSource]
    ) -> tuple[Sequence[SplitSource], Split | None]:
        cfg = self.cfg
        return [
            pooled_clusters(data, domain, cfg.clusters, self.oracle, cfg.edge_joins, self.unlabelled)
        ], None

    def local_steps(self) -> int | None:
        """The federated participants' steps together (every cluster, and the edge when it joins),
        so pooling is compared at the same client compute."""
        cfg = self.cfg
        return None if cfg.local_steps is None else cfg.local_steps * (cfg.clusters + int(cfg.edge_joins))

    def deliver(self, r: int) -> bool:
        return False  # the one learner is a copy of the edge's model from the start

    def aggregate(self, edges: list[EdgeServer], r: int) -> None:
        for e in edges:  # nothing to average: the learner's modules are the edge's
            (learner,) = e.clients
            e.install(tunable_state(learner.model))


STRATEGY = PooledLabels
