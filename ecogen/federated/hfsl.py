"""HFSL — hybrid federated split learning over the client clusters of one or more edges.

Every round: the edge sends each device of each cluster the tunable modules of the segment it
holds; inside a cluster training is serial through the device chain (split learning, see
``ecogen.split``); the clusters of every edge train side by side — in threads (``driver:
serial``) or as one stacked computation (``driver: batched``, :mod:`ecogen.federated.drivers`); each
device uploads its segment's modules and the edge averages the clusters' modules weighted by
their examples (FedAvg).  Every ``cloud_every`` rounds the cloud averages the edges' modules the
same way and sends the result back.  Everything that crosses a link goes through a
:class:`~ecogen.split.channel.Channel` (one per edge), so the byte ledgers are complete.

What a round does is the method's strategy (:mod:`ecogen.federated.strategies`, one file per
method); the roles it moves between — an edge server and its cluster clients — and the messages
they exchange are in :mod:`ecogen.federated.roles`.  This module is the loop.

Levers (``HfslParams``): ``local_steps`` fixes each participant's client steps per round;
``edge_joins`` makes the edge, which holds labelled data of its own, one more participant of its
rounds (it holds the whole model, so nothing it does crosses a link); ``server_optimizer`` steps
along the averaged update with FedAvgM or FedAdam (:mod:`ecogen.federated.server_opt`);
``lora_aggregation: frozen_a`` is FFA-LoRA; method ``fedprox`` is FedProx.

Many clusters, few a round (``clusters_per_round``, :mod:`ecogen.federated.participation`): an
edge whose rounds draw their clusters builds the drawn clusters' clients — their data read, a
copy of the edge's model each — at the round's start and drops them at its end, so a round's
time, memory and bytes follow the clusters drawn, not the clusters there are.  Faults strike
among the drawn; the edge averages over those that upload, and the cloud weighs each edge by
the examples of its round's participants.  Where every cluster takes part, each cluster's client
is built once and kept for the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ecogen.config.params import HfslParams
from ecogen.data.prepared import Split, SplitSource
from ecogen.federated import checkpoint as rounds
from ecogen.federated import faults, participation
from ecogen.federated.drivers import fit_batched, fit_serial
from ecogen.federated.roles import EdgeServer, Evaluate
from ecogen.federated.strategies import strategy_for
from ecogen.federated.strategies.base import Strategy, clients_of
from ecogen.peft.edge import base_vit
from ecogen.runtime.environment import cores
from ecogen.runtime.progress import Step, report
from ecogen.split.allocation import allocate_blocks
from ecogen.split.channel import Channel

log = logging.getLogger("ecogen.hfsl")


@dataclass
class EdgeJob:
    """One edge's part of an HFSL run: its model (trained in place), clusters and test."""

    name: str
    model: nn.Module
    clusters: Sequence[SplitSource]  # each read when its client is built (every cluster: at the start)
    evaluate: Evaluate
    seed: int
    channel: Channel = field(default_factory=Channel)
    own: Split | None = None  # the edge's labelled set, when the edge joins its rounds


@dataclass
class HfslOutcome:
    state: dict[str, Tensor]  # the edge's aggregated tunable modules after the last round
    accuracy: list[float]  # after each round
    bytes_per_round: list[dict[str, int]]  # "link/direction" → bytes, one dict per round
    block_ranges: list[tuple[int, int]]
    # client compute per round, summed over participants: optimiser steps, and images that went
    # through a training forward + backward pass (labelled and pseudo-labelled)
    steps_per_round: list[int] = field(default_factory=list)
    images_per_round: list[int] = field(default_factory=list)
    # where clusters keep their own models (`local`): each cluster's model after the last round;
    # empty when the edge's model serves every cluster
    cluster_models: list[nn.Module] = field(default_factory=list)
    # clusters whose uploads the edge aggregated, per round (fewer under dropout and stragglers)
    clusters_aggregated: list[int] = field(default_factory=list)
    # segments run by a device standing in for an offline one, per round (dropout_policy hand_over)
    handed_over: list[int] = field(default_factory=list)
    # clusters that trained, per round: those drawn (clusters_per_round; else every cluster) less
    # those a device dropout kept out; the edge's own participant not counted
    clusters_trained: list[int] = field(default_factory=list)


def run_hfsl_edges(
    jobs: list[EdgeJob],
    cfg: HfslParams,
    accelerator: str,
    workers: int | None = None,
    strategy: Strategy | None = None,
    checkpoint: Path | None = None,
) -> dict[str, HfslOutcome]:
    """Runs ``cfg.rounds`` rounds of ``cfg.method``'s strategy for every edge; models are trained
    in place.  ``workers``: clusters trained at once (default: one per core, at most one per
    cluster).  ``checkpoint``: a file written after every round, from which a rerun of the same
    run continues (:mod:`ecogen.federated.checkpoint`)."""
    strategy = strategy or strategy_for(cfg)
    # edges whose rounds draw their clusters get their clients round by round; the others, now
    drawing = [participation.samples(cfg, len(j.clusters)) for j in jobs]
    edges = [
        EdgeServer(
            j.name,
            j.model,
            [] if draws else clients_of(j.model, j.clusters, j.own, strategy),
            j.evaluate,
            j.seed,
            j.channel,
        )
        for j, draws in zip(jobs, drawing, strict=True)
    ]
    accuracy: dict[str, list[float]] = {e.name: [] for e in edges}
    per_round: dict[str, list[dict[str, int]]] = {e.name: [] for e in edges}
    compute: dict[str, list[tuple[int, int]]] = {e.name: [] for e in edges}
    aggregated: dict[str, list[int]] = {e.name: [] for e in edges}
    handed: dict[str, list[int]] = {e.name: [] for e in edges}
    trained: dict[str, list[int]] = {e.name: [] for e in edges}
    sizes = [[len(d) for d in j.clusters] + ([len(j.own)] if j.own is not None else []) for j in jobs]
    stamp = rounds.fingerprint(cfg, edges, sizes)
    first = 0
    if (resumed := rounds.restore(checkpoint, stamp, edges)) is not None:
        first, histories = resumed
        accuracy, per_round, compute = histories["accuracy"], histories["bytes"], histories["compute"]
        aggregated = histories["aggregated"]
        handed = histories.get("handed_over", {e.name: [0] * first for e in edges})
        trained = histories.get("clusters_trained", {e.name: [0] * first for e in edges})
    # participants a round trains, over every edge
    size = sum(participation.per_round(cfg, len(j.clusters)) + (j.own is not None) for j in jobs)
    workers = workers or max(1, min(size, cores()))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cluster") as pool:
        for r in range(first, cfg.rounds):
            for e, j, draws in zip(edges, jobs, drawing, strict=True):
                if draws:
                    _enlist(e, j, r, cfg, strategy)
                e.channel.ledger.reset()
                # devices each participant needs this round: a cluster's chain, or 0 for the edge's own
                devices = [0 if c.at_edge else len(c.segments) for c in e.clients]
                up = faults.online(e.seed, r, devices, cfg)
                e.present = [faults.takes_part(u, cfg) for u in up]
                e.late = faults.late(e.seed, r, len(e.clients), cfg)
                for c, u, here in zip(e.clients, up, e.present, strict=True):
                    c.hosts = faults.hosts(u) if here and not all(u) else []
                    c.hand_over(e.channel)
                handed[e.name].append(sum(h != i for c in e.clients for i, h in enumerate(c.hosts)))
                if strategy.deliver(r):
                    e.broadcast()
            active = [(e, e.number(k), c) for e in edges for k, c in enumerate(e.clients) if e.takes_part(k)]
            if cfg.driver == "batched":
                done = fit_batched(active, strategy, accelerator, r)
            else:
                done = fit_serial(active, strategy, accelerator, r, pool, workers)
            strategy.aggregate(edges, r)
            for e in edges:
                mine = [(s, n) for name, s, n in done if name == e.name]
                compute[e.name].append((sum(s for s, _ in mine), sum(n for _, n in mine)))
                counted = [
                    e.takes_part(k) and not e.is_late(k) for k, c in enumerate(e.clients) if not c.at_edge
                ]
                aggregated[e.name].append(sum(counted))
                trained[e.name].append(sum(e.takes_part(k) for k, c in enumerate(e.clients) if not c.at_edge))
                accuracy[e.name].append(strategy.evaluate(e))
                per_round[e.name].append(e.channel.ledger.snapshot())
                round_bytes = per_round[e.name][-1]
                edge_client = sum(v for k, v in round_bytes.items() if k.startswith("edge_client/"))
                progress = {"accuracy": accuracy[e.name][-1], "bytes_edge_client": float(edge_client)}
                report(Step("hfsl", r + 1, cfg.rounds, progress, "round", e.name, len(edges)))
                log.debug(
                    "hfsl[%s] %s round %d/%d accuracy=%.4f bytes=%s",
                    e.name,
                    cfg.method,
                    r + 1,
                    cfg.rounds,
                    accuracy[e.name][-1],
                    e.channel.ledger.by_link(),
                )
            for e, draws in zip(edges, drawing, strict=True):
                if draws:  # the round's clients go: their data, model copies and optimiser states
                    e.clients, e.numbers = [], []
            active = []  # nor does the round's list of them keep them
            if checkpoint is not None:
                history: dict[str, dict[str, list[Any]]] = {
                    "accuracy": accuracy,
                    "bytes": per_round,
                    "compute": compute,
                    "aggregated": aggregated,
                    "handed_over": handed,
                    "clusters_trained": trained,
                }
                rounds.save(checkpoint, stamp, r, edges, history)
    rounds.clear(checkpoint)
    depth = len(base_vit(jobs[0].model).blocks) if jobs else 0
    ranges = (
        allocate_blocks(depth, cfg.devices_per_cluster, cfg.allocation) if strategy.split else [(0, depth)]
    )
    return {
        e.name: HfslOutcome(
            e.state,
            accuracy[e.name],
            per_round[e.name],
            ranges,
            [s for s, _ in compute[e.name]],
            [n for _, n in compute[e.name]],
            strategy.cluster_models(e),
            aggregated[e.name],
            handed[e.name],
            trained[e.name],
        )
        for e in edges
    }


def _enlist(e: EdgeServer, job: EdgeJob, r: int, cfg: HfslParams, strategy: Strategy) -> None:
    """Round ``r``'s participants of an edge that draws them: the drawn clusters, read now, each
    with a copy of the edge's model (its modules arrive with the round's delivery), and the
    edge's own participant."""
    chosen = participation.drawn(e.seed, r, len(job.clusters), cfg)
    e.clients = clients_of(e.model, [job.clusters[i] for i in chosen], job.own, strategy)
    e.numbers = chosen + ([len(job.clusters)] if job.own is not None else [])


def run_hfsl(
    edge_model: nn.Module,
    clusters: Sequence[SplitSource],
    cfg: HfslParams,
    evaluate: Evaluate,
    accelerator: str,
    seed: int,
    label: str = "edge",
    channel: Channel | None = None,
) -> HfslOutcome:
    """One edge's HFSL run (see :func:`run_hfsl_edges`)."""
    job = EdgeJob(label, edge_model, clusters, evaluate, seed, channel or Channel())
    return run_hfsl_edges([job], cfg, accelerator)[label]
