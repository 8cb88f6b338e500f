"""The edge alone: the edge trains on its own labelled set with exactly HFSL's schedule — the same
rounds, client steps per round, learning rate and server step as the edge's participant in
EcoGen's rounds (``edge_joins``) — and no cluster takes part.  EcoGen's gain over it is what the
clusters add beside the edge's own continued training."""

from __future__ import annotations

from collections.abc import Sequence

from ecogen.data.prepared import PreparedData, Split, SplitSource
from ecogen.federated.strategies.base import Strategy


class EdgeAlone(Strategy):
    title = "Edge alone (its labels, HFSL's schedule)"
    split = False  # nothing crosses a device chain: the edge holds its whole model

    def participants(
        self, data: PreparedData, domain: str, clusters: Sequence[SplitSource]
    ) -> tuple[Sequence[SplitSource], Split | None]:
        return [], data.edge(domain)  # the edge's labels, whether or not EcoGen's edge joins


STRATEGY = EdgeAlone
