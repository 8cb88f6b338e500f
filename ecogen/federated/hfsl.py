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
``lora_aggregation: frozen_a`` is FFA-LoRA, ``fedex`` FedEx-LoRA (:mod:`ecogen.federated.fedex`:
the residual goes into the frozen weights, and to the clusters); method ``fedprox`` is FedProx.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from torch import Tensor, nn

from ecogen.config.params import HfslParams
from ecogen.data.prepared import Split, SplitSource
from ecogen.federated import checkpoint as rounds
from ecogen.federated import faults, participation
from ecogen.federated.drivers import DRIVERS, Done
from ecogen.federated.roles import EdgeServer, Evaluate
from ecogen.federated.strategies import strategy_for
from ecogen.federated.strategies.base import Strategy, clients_of
from ecogen.peft.edge import base_vit
from ecogen.runtime.environment import cores
from ecogen.runtime.progress import Step, report
from ecogen.split.channel import Channel, LinkClass

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


@dataclass(frozen=True)
class RoundRecord:
    """What one round did at one edge: appended after every round, written to the checkpoint, and
    what the stage logs."""

    accuracy: float  # the edge's model after the round
    bytes: dict[str, int]  # "link/direction" → bytes that crossed it in the round
    # client compute, summed over the participants: optimiser steps, and images that went
    # through a training forward + backward pass (labelled and pseudo-labelled)
    steps: int
    images: int
    aggregated: int  # clusters whose uploads the edge aggregated (fewer under dropout and stragglers)
    handed_over: int  # segments run by a device standing in for an offline one (hand_over)
    # clusters that trained: those drawn (clusters_per_round; else every cluster) less those a
    # device dropout kept out; the edge's own participant not counted
    trained: int

    def link_bytes(self, link: LinkClass) -> int:
        """Bytes over every direction of ``link`` in the round."""
        return sum(v for k, v in self.bytes.items() if k.startswith(f"{link}/"))


RoundField = Literal["accuracy", "steps", "images", "aggregated", "handed_over", "trained"]


@dataclass
class HfslOutcome:
    state: dict[str, Tensor]  # the edge's aggregated tunable modules after the last round
    records: list[RoundRecord]  # one per round
    block_ranges: list[tuple[int, int]]
    # where clusters keep their own models (`local`): each cluster's model after the last round;
    # empty when the edge's model serves every cluster
    cluster_models: list[nn.Module] = field(default_factory=list)
    # DP-SGD: each participant's accountant history [(σ, q, steps)] by its number
    dp_history: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)

    @property
    def accuracy(self) -> list[float]:
        return [r.accuracy for r in self.records]

    @property
    def bytes_per_round(self) -> list[dict[str, int]]:
        return [r.bytes for r in self.records]

    def per_round(self, field: RoundField) -> list[float]:
        """One of the records' counts (``steps``, ``images``, ``aggregated``, ``handed_over``,
        ``trained``) or ``accuracy``, round by round."""
        return [getattr(r, field) for r in self.records]


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
    edges = [_edge_server(j, strategy, draws) for j, draws in zip(jobs, drawing, strict=True)]
    sizes = [[len(d) for d in j.clusters] + ([len(j.own)] if j.own is not None else []) for j in jobs]
    stamp = rounds.fingerprint(cfg, edges, sizes)
    records: dict[str, list[RoundRecord]] = {e.name: [] for e in edges}
    first = 0
    if (resumed := rounds.restore(checkpoint, stamp, edges)) is not None:
        first, saved = resumed
        records = {name: [RoundRecord(**r) for r in done] for name, done in saved.items()}
    # participants a round trains, over every edge
    size = sum(participation.per_round(cfg, len(j.clusters)) + (j.own is not None) for j in jobs)
    workers = workers or max(1, min(size, cores()))
    for r in range(first, cfg.rounds):
        handed = [
            _open_round(e, j if draws else None, r, cfg, strategy)
            for e, j, draws in zip(edges, jobs, drawing, strict=True)
        ]
        active = [
            (e, e.number(k), c)
            for e in edges
            for k, c in enumerate(e.clients)
            if e.takes_part(k) and strategy.trains_in_round(c)
        ]
        done = DRIVERS[cfg.driver](active, strategy, accelerator, r, workers)
        strategy.aggregate(edges, r)
        done += strategy.edge_step(edges, r, accelerator)
        for e, h in zip(edges, handed, strict=True):
            records[e.name].append(_close_round(e, h, done, strategy))
            _report(e, r, cfg, records[e.name][-1], len(edges))
        for e, draws in zip(edges, drawing, strict=True):
            if draws:  # the round's clients go: their data, model copies and optimiser states
                e.clients, e.numbers = [], []
        active = []  # nor does the round's list of them keep them
        if checkpoint is not None:
            saved = {name: [asdict(x) for x in done] for name, done in records.items()}
            rounds.save(checkpoint, stamp, r, edges, saved)
    rounds.clear(checkpoint)
    depth = len(base_vit(jobs[0].model).blocks) if jobs else 0
    ranges = strategy.block_ranges(depth) if strategy.split else [(0, depth)]
    return {
        e.name: HfslOutcome(e.state, records[e.name], ranges, strategy.cluster_models(e), e.dp_history)
        for e in edges
    }


def _edge_server(job: EdgeJob, strategy: Strategy, draws: bool) -> EdgeServer:
    clients = [] if draws else clients_of(job.model, job.clusters, job.own, strategy)
    return EdgeServer(job.name, job.model, clients, job.evaluate, job.seed, job.channel)


def _open_round(e: EdgeServer, drawn: EdgeJob | None, r: int, cfg: HfslParams, strategy: Strategy) -> int:
    """Round ``r`` at edge ``e`` before training: its participants (``drawn``: an edge whose rounds
    draw their clusters), who is online, late and standing in, and the round's delivery; returns
    the segments handed over to a stand-in device."""
    if drawn is not None:  # the drawn clusters, read now, each with a copy of the edge's model (its
        # modules arrive with the round's delivery), and the edge's own participant
        chosen = participation.drawn(e.seed, r, len(drawn.clusters), cfg)
        e.clients = clients_of(e.model, [drawn.clusters[i] for i in chosen], drawn.own, strategy)
        e.numbers = chosen + ([len(drawn.clusters)] if drawn.own is not None else [])
    e.channel.ledger.reset()
    for k, c in enumerate(e.clients):  # a cluster's DP-SGD accountant is kept at the edge between rounds
        if c.over_links:
            c.dp_history = e.dp_history.setdefault(e.number(k), [])
    # devices each participant needs this round: a cluster's chain, or 0 for the edge's own
    devices = [c.devices for c in e.clients]
    up = faults.online(e.seed, r, devices, cfg)
    e.present = [faults.takes_part(u, cfg) for u in up]
    e.late = faults.late(e.seed, r, len(e.clients), cfg)
    for c, u, here in zip(e.clients, up, e.present, strict=True):
        c.hosts = faults.hosts(u) if here and not all(u) else []
        c.hand_over(e.channel)
    if strategy.deliver(r):
        e.broadcast()
    return sum(h != i for c in e.clients for i, h in enumerate(c.hosts))


def _close_round(e: EdgeServer, handed: int, done: list[Done], strategy: Strategy) -> RoundRecord:
    """Round ``r`` at edge ``e`` after aggregation: its record (``done``: every participant's
    (edge, steps, images))."""
    mine = [(s, n) for name, s, n in done if name == e.name]
    clusters = [k for k, c in enumerate(e.clients) if c.over_links]
    return RoundRecord(
        accuracy=strategy.evaluate(e),
        bytes=e.channel.ledger.snapshot(),
        steps=sum(s for s, _ in mine),
        images=sum(n for _, n in mine),
        aggregated=sum(e.takes_part(k) and not e.is_late(k) for k in clusters),
        handed_over=handed,
        trained=sum(e.takes_part(k) for k in clusters),
    )


def _report(e: EdgeServer, r: int, cfg: HfslParams, record: RoundRecord, edges: int) -> None:
    progress = {"accuracy": record.accuracy, "bytes_edge_client": float(record.link_bytes("edge_client"))}
    report(Step("hfsl", r + 1, cfg.rounds, progress, "round", e.name, edges))
    log.debug(
        "hfsl[%s] %s round %d/%d accuracy=%.4f bytes=%s",
        e.name,
        cfg.method,
        r + 1,
        cfg.rounds,
        record.accuracy,
        e.channel.ledger.by_link(),
    )


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
