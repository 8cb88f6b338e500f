"""SemiFL (Diao et al., NeurIPS 2022, arXiv 2106.01432): alternate training between a server that
holds the labels and clients that hold none — here the edge and its clusters.

A round: the edge delivers its modules; each cluster pseudo-labels its images with the delivered
(fixed) model, keeping those whose confidence passes τ (``teacher: round_start``, validated), and
trains on them only: the "fix" loss (the strong view against the pseudo-label,
``unlabelled_weight``) and the "mix" loss (two pseudo-labelled views mixed, the target their
pseudo-labels mixed by the same λ ~ Beta(α, α): ``mixup_weight``, ``mixup_alpha``); the edge
averages the clusters' modules (FedAvg, the clusters alone), then trains the average on its own
labelled set, and that is the next round's delivery.  The edge's supervised step is sequential,
not one more averaged participant: that is SemiFL's alternation (its code: clients train, the
server aggregates them, then fine-tunes on its labels, ``train_classifier_ssfl.py``).  Round 0's
clusters start from the edge's fine-tuned model, which has already trained on the edge's labels.

The edge's step is the edge participant's training of EcoGen's rounds (the same client step and
steps per round, nothing crossing a link), moved after the aggregation; it trains whatever
``edge_joins`` says.  SemiFL's clients hold no labels: the clusters' labels are withheld unless
``semifl_client_labels`` (EcoGen's clusters do hold ~10 %; with it they train on those too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ecogen.data.prepared import UNLABELLED, PreparedData, Split, SplitSource
from ecogen.federated.drivers import fit_lanes, seed_of
from ecogen.federated.roles import ClusterClient, EdgeServer
from ecogen.federated.strategies.base import Strategy
from ecogen.peft.tunable import tunable_state


@dataclass(frozen=True)
class Unlabelled:
    """A cluster's split with its labels withheld: SemiFL's clients hold none."""

    source: SplitSource

    def __len__(self) -> int:
        return len(self.source)

    def load(self) -> Split:
        split = self.source.load()
        return Split(split.x, torch.full_like(split.y, UNLABELLED))

    def labels(self) -> Tensor:
        return torch.full_like(self.source.labels(), UNLABELLED)


class SemiFL(Strategy):
    title = "SemiFL (the edge on its labels, the clusters on its pseudo-labels, alternating)"

    def participants(
        self, data: PreparedData, domain: str, clusters: Sequence[SplitSource]
    ) -> tuple[Sequence[SplitSource], Split | None]:
        own = data.edge(domain)  # the edge's labels: its own step, whatever edge_joins says
        return (clusters if self.cfg.semifl_client_labels else [Unlabelled(c) for c in clusters]), own

    def trains_in_round(self, client: ClusterClient) -> bool:
        return client.over_links  # the clusters; the edge trains after their aggregate (edge_step)

    def edge_step(self, edges: list[EdgeServer], r: int, accelerator: str) -> list[tuple[str, int, int]]:
        """Each edge trains the round's aggregate on its labels (its own participant, the whole
        model in one place) and installs the result: the next round's delivery."""
        done = []
        for e in edges:
            for k, c in enumerate(e.clients):
                if c.over_links:
                    continue
                c.receive(e.state, e.channel)  # the edge's own model: nothing crosses a link
                steps, images = fit_lanes(
                    [c], [e.channel], [seed_of(e, r, e.number(k))], self, accelerator, r
                )
                e.install(tunable_state(c.model))
                done.append((e.name, steps, images[0]))
        return done


STRATEGY = SemiFL
