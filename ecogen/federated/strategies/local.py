"""Local only: every cluster gets the edge's modules once and keeps training its own model; no
aggregation, no edge participant.  Accuracy is the mean over the clusters' models.  A model per
cluster is what drawing a few clusters a round avoids, so ``hfsl.clusters_per_round`` is refused
with this method (params validation)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ecogen.data.prepared import PreparedData, Split, SplitSource
from ecogen.federated.roles import EdgeServer
from ecogen.federated.strategies.base import Strategy


class Local(Strategy):
    title = "Local only (no federation)"

    def participants(
        self, data: PreparedData, domain: str, clusters: Sequence[SplitSource]
    ) -> tuple[Sequence[SplitSource], Split | None]:
        return clusters, None  # no rounds for the edge to join

    def deliver(self, r: int) -> bool:
        return r == 0

    def aggregate(self, edges: list[EdgeServer], r: int) -> None:
        return None  # every cluster keeps its own model

    def evaluate(self, edge: EdgeServer) -> float:
        return sum(edge.evaluate(c.model) for c in edge.clients) / len(edge.clients)

    def cluster_models(self, edge: EdgeServer) -> list[nn.Module]:
        return [c.model for c in edge.clients]


STRATEGY = Local
