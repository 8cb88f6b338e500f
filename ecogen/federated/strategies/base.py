"""What one HFSL method does in a round, as hooks the round loop calls (as Flower's ``Strategy``).

The base class is FedAvg of the tunable PEFT modules over clients that train through their
cluster's device chain — EcoGen itself (``ecogen.py`` only names it).  A method overrides what it
does differently:

* set-up: :meth:`Strategy.model` (what trains), :meth:`Strategy.participants` (whose data),
  :meth:`Strategy.local_steps`, :meth:`Strategy.lora_factor` (a LoRA factor kept frozen);
* a round: :meth:`Strategy.deliver` (does the edge send its modules this round),
  :meth:`Strategy.trains_in_round` (which participants train in the client step),
  :meth:`Strategy.gradient_term` (a term each device adds to its gradients),
  :meth:`Strategy.aggregate` (edges' and cloud's aggregation), :meth:`Strategy.edge_step`
  (training at the edge after it), :meth:`Strategy.evaluate`;
* results: :meth:`Strategy.cluster_models` (where each cluster keeps its own model) and
  :meth:`Strategy.save`.

Every method starts from the same edge model and trains on the same clusters for the same rounds
with the same client step (:class:`~ecogen.split.semi_supervised.StackedSemiSupervised`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import torch
from peft import PeftModel
from torch import Tensor, nn

from ecogen.config.params import HfslParams
from ecogen.data.prepared import PreparedData, Split, SplitSource
from ecogen.federated.aggregate import Update, aggregate, lora_residual
from ecogen.federated.central_dp import central_noise
from ecogen.federated.fedex import BaseLog, lora_scalings
from ecogen.federated.roles import ClusterClient, EdgeClient, EdgeServer, cloud_average
from ecogen.federated.server_opt import server_step
from ecogen.federated.upload_hooks import Upload, received, upload_hooks
from ecogen.models.vit import MaskedAutoencoder
from ecogen.peft.edge import save_tunable
from ecogen.split.allocation import BlockCosts, allocate_blocks
from ecogen.split.client_training import ClientTraining
from ecogen.split.reconstruction import ChainReconstruction

GradientTerm = Callable[[], None]  # called after each backward pass, before the optimiser steps


def trained_examples(data: Split, cfg: HfslParams) -> int:
    """FedAvg's n_k (``cfg.fedavg_weights``): the examples a participant trains on — its labelled
    ones when no loss reads its unlabelled images (neither pseudo-labels nor ``mae_weight``: they
    then teach it nothing), else all of them — or the labels it holds whatever it trains on
    (pseudo-labels that train as labels, ``hfsl.feature_labels``, give it no more say)."""
    if cfg.fedavg_weights == "labelled":
        return int(data.held_labels.sum())
    if not ClientTraining.of(cfg).uses_unlabelled:
        return int(data.labelled.sum())
    return len(data)


class Strategy:
    title: ClassVar[str] = "FedAvg of PEFT modules over split clients"
    split: ClassVar[bool] = True  # clients train through their cluster's device chain
    full_model: ClassVar[bool] = False  # every weight trains (LoRA merged first), not only PEFT
    pooled: ClassVar[bool] = False  # one central learner whose data hold the edge's labels too

    def __init__(self, cfg: HfslParams) -> None:
        self.cfg = cfg
        self.client = ClientTraining.of(cfg)  # what a participant's local training reads
        self.upload_hooks = upload_hooks(cfg)  # attacks, DP: what happens to an upload on its way
        self.central_dp = central_noise(cfg)  # DP-FedAvg at the edge, or None (hfsl.dp_mechanism)
        # the modelled per-block costs a cost-aware hfsl.allocation weighs (set by the stage that
        # knows the cluster's devices, ecogen.costs.round.block_costs); None for the other rules
        self.block_costs: BlockCosts | None = None
        # the FM's frozen decoder side on every end device, which hfsl.mae_weight trains through
        # (set by the stage that loads the FM, ecogen.stages.hfsl); None where the lever is off
        self.reconstruction: ChainReconstruction | None = None

    def block_ranges(self, depth: int) -> list[tuple[int, int]]:
        """The middle devices' blocks of a cluster's chain, by ``hfsl.allocation``."""
        return allocate_blocks(depth, self.cfg.devices_per_cluster, self.cfg.allocation, self.block_costs)

    # ---- set-up ------------------------------------------------------------------------------

    def model(self, edge_model: nn.Module) -> nn.Module:
        """The model this method trains, from the edge's: itself, or a fully trainable copy (LoRA
        merged into the backbone, so what crosses links is the plain ViT, every weight unfrozen)."""
        if not self.full_model:
            return edge_model
        model = copy.deepcopy(edge_model)
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def participants(
        self, data: PreparedData, domain: str, clusters: Sequence[SplitSource]
    ) -> tuple[Sequence[SplitSource], Split | None]:
        """Who trains on what, given the edge's ``clusters`` as prepared (unread until they take
        part): here the clusters, and the edge's labelled set when the edge joins its rounds."""
        return clusters, data.edge(domain) if self.cfg.edge_joins else None

    def local_steps(self) -> int | None:
        """Client steps per participant and round (None: ``local_epochs`` epochs)."""
        return self.cfg.local_steps

    def lora_factor(self) -> str | None:
        """A LoRA factor kept as the edge trained it (FFA-LoRA's A), or None."""
        frozen = self.cfg.lora_aggregation == "frozen_a" and not self.full_model
        return "lora_A" if frozen else None

    # ---- a round -----------------------------------------------------------------------------

    def deliver(self, r: int) -> bool:
        """Does the edge send its modules to every participant at the start of round ``r``."""
        return True

    def trains_in_round(self, client: ClusterClient) -> bool:
        """Does ``client`` train in the round's client step and upload its result (every
        participant here; SemiFL's edge trains apart, after the aggregation: :meth:`edge_step`)."""
        return True

    def gradient_term(self, params: list[Tensor]) -> GradientTerm | None:
        """Made when a participant starts its round's local training: ``params`` are its tunable
        parameters as delivered (one participant's, or every participant's stacked along a leading
        axis in the batched driver: a term must act elementwise)."""
        return None

    def aggregate(self, edges: list[EdgeServer], r: int) -> None:
        """Every participant uploads, each edge averages (FedAvg weighted by
        :func:`trained_examples`, then its server optimiser); every ``cloud_every`` rounds the
        cloud averages the edges."""
        cfg = self.cfg
        for e in edges:
            clusters, own = self.uploads(e, r)
            updates = clusters + own
            if not updates:  # every participant offline or late: the edge keeps its modules
                continue
            weighted = cfg.robust_weights == "examples"
            if self.central_dp is not None:
                merged = self.central_dp(clusters, own, e.state, e.seed, r)
            else:
                merged = aggregate(
                    updates, e.state, cfg.aggregation, cfg.trim_fraction, cfg.clip_norm, weighted
                )
            self.correct_base(e, updates)
            e.state, e.server = server_step(
                e.state, merged, e.server, cfg.server_optimizer, cfg.server_lr, beta1=cfg.server_momentum
            )
        if cfg.cloud_every and (r + 1) % cfg.cloud_every == 0 and len(edges) > 1:
            cloud_average(edges, [sum(trained_examples(c.data, cfg) for c in e.clients) for e in edges])
        for e in edges:
            e.install(e.state)

    def edge_step(self, edges: list[EdgeServer], r: int, accelerator: str) -> list[tuple[str, int, int]]:
        """Training at the edge once the round's aggregate is installed, before the next delivery
        (SemiFL's supervised step on the edge's labels); (edge name, steps, images) of each
        training done, counted with the round's (none here)."""
        return []

    def correct_base(self, e: EdgeServer, updates: list[tuple[dict[str, Tensor], int]]) -> None:
        """FedEx-LoRA (``lora_aggregation: fedex``): what averaging A and B on their own misses of
        the average of B·A, folded into the edge's frozen weights (:mod:`ecogen.federated.fedex`),
        the uploads weighted as FedAvg weighs them."""
        if self.cfg.lora_aggregation != "fedex":
            return
        e.bases = e.bases or BaseLog()
        e.bases.fold(e.model, lora_residual(updates, lora_scalings(e.model)))

    def uploads(self, e: EdgeServer, r: int) -> tuple[list[Update], list[Update]]:
        """(state, n_k) of every participant of ``e`` whose upload counts this round: those that took
        part and met the deadline (a late upload still crossed the link), as the upload hooks
        leave it (poisoned, noised: :mod:`ecogen.federated.upload_hooks`).  One that trained on
        nothing (no labels, labels only) has no say.  The clusters', then the edge's own."""
        clusters: list[Update] = []
        own: list[Update] = []
        for k, c in enumerate(e.clients):
            if not e.takes_part(k) or not self.trains_in_round(c):
                continue
            state = c.send(e.channel)
            n = trained_examples(c.data, self.cfg)
            if e.is_late(k) or n <= 0:
                continue
            if c.over_links:  # the edge's own update never leaves the edge
                state = received(self.upload_hooks, Upload(state, e.state, e.number(k), e.seed, r))
            (clusters if c.over_links else own).append((state, n))
        return clusters, own

    def evaluate(self, edge: EdgeServer) -> float:
        return edge.evaluate(edge.model)

    # ---- results -----------------------------------------------------------------------------

    def cluster_models(self, edge: EdgeServer) -> list[nn.Module]:
        """Each cluster's own model after the last round, where clusters keep their own; empty
        when the edge's model serves every cluster."""
        return []

    def save(
        self, model: nn.Module, folder: Path, peft_method: str, fm: MaskedAutoencoder | None = None
    ) -> Path:
        """The trained result: the edge's tunable modules (with what its frozen weights hold beyond
        ``fm``'s, FedEx-LoRA's corrections), or the whole model's weights."""
        if self.full_model:
            path = folder / "model.pt"
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), path)
            return path
        path = folder / "tunable.pt"
        save_tunable(model, path, peft_method, fm)
        return path


def clients_of(
    edge_model: nn.Module, clusters: Sequence[SplitSource], own: Split | None, strategy: Strategy
) -> list[ClusterClient]:
    """The participants of one edge: a client per cluster (its data read now), and the edge's own
    when it joins."""
    cfg = strategy.cfg
    out = [
        ClusterClient.of(
            edge_model,
            d.load(),
            cfg.devices_per_cluster,
            strategy.split,
            cfg.allocation,
            strategy.block_costs,
        )
        for d in clusters
    ]
    if own is not None:
        out.append(EdgeClient.of(edge_model, own, cfg.devices_per_cluster))
    return out
