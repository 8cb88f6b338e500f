"""HFSL — hybrid federated split learning over the client clusters of one or more edges.

Every round: the edge sends each device of each cluster the tunable modules of the segment it
holds; inside a cluster training is serial through the device chain (split learning, see
``ecogen.split``); the clusters of an edge train in parallel (threads of this process); each
device uploads its segment's modules and the edge averages the clusters' modules weighted by
their examples (FedAvg).  Every ``cloud_every`` rounds the cloud averages the edges' modules the
same way and sends the result back.  Everything that crosses a link goes through a
:class:`~ecogen.split.channel.Channel` (one per edge), so the byte ledgers are complete.

The baselines run through the same loop with other switches (:mod:`ecogen.federated.methods`).

Levers (``HfslParams``): ``local_steps`` fixes each participant's client steps per round;
``edge_joins`` makes the edge, which holds labelled data of its own, one more participant of its
rounds (it holds the whole model, so nothing it does crosses a link); ``server_optimizer`` steps
along the averaged update with FedAvgM or FedAdam (:mod:`ecogen.federated.server_opt`);
``proximal_mu`` is FedProx; ``lora_aggregation: frozen_a`` is FFA-LoRA.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from torch import Tensor, nn

from ecogen.config.params import HfslParams
from ecogen.data.prepared import Split
from ecogen.environment import share_cores
from ecogen.federated.aggregate import fedavg
from ecogen.federated.methods import MethodSpec, method_spec
from ecogen.federated.server_opt import ServerState, server_step
from ecogen.models.vit import split_segments
from ecogen.peft.edge import base_vit
from ecogen.peft.tunable import load_tunable_state, tunable_state
from ecogen.split.allocation import allocate_blocks
from ecogen.split.chain import SplitChain
from ecogen.split.channel import Channel, TunableModules
from ecogen.split.semi_supervised import SplitSemiSupervised, WholeModel, fixmatch_loader
from ecogen.training.pseudo_label import class_prior
from ecogen.training.trainer import make_trainer

log = logging.getLogger("ecogen.hfsl")

Evaluate = Callable[[nn.Module], float]


@dataclass
class Cluster:
    """One client cluster: its own copy of the model, cut into per-device segments."""

    model: nn.Module
    segments: list[nn.Module]
    data: Split
    # full-model parameter names held by each device (empty for devices with nothing tunable)
    device_keys: list[list[str]] = field(default_factory=list)
    at_edge: bool = False  # the edge's own participant: holds the whole model, uses no link


@dataclass
class EdgeJob:
    """One edge's part of an HFSL run: its model (trained in place), clusters and test."""

    name: str
    model: nn.Module
    clusters: list[Split]
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
    # `local` only: each cluster's own model after the last round (the others serve every cluster
    # with the edge's model)
    cluster_models: list[nn.Module] = field(default_factory=list)


def make_cluster(
    edge_model: nn.Module,
    data: Split,
    devices: int,
    split: bool = True,
    rule: str = "balanced",
    at_edge: bool = False,
) -> Cluster:
    model = copy.deepcopy(edge_model)
    if split and not at_edge:
        vit = base_vit(model)
        segments = split_segments(vit, allocate_blocks(len(vit.blocks), devices, rule))  # type: ignore[arg-type]
    else:
        segments = [model]
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    keys = [[names[id(p)] for p in seg.parameters() if id(p) in names] for seg in segments]
    return Cluster(model, segments, data, keys, at_edge)


def deliver(cluster: Cluster, state: dict[str, Tensor], channel: Channel) -> None:
    """Edge → each device: the tunable modules of the segment that device holds."""
    if cluster.at_edge:  # the edge's own copy: nothing crosses a link
        load_tunable_state(cluster.model, state)
        return
    received: dict[str, Tensor] = {}
    for keys in cluster.device_keys:
        if keys:
            msg = channel.send(TunableModules({k: state[k] for k in keys}), "edge_client", "down")
            received.update(msg.state)
    load_tunable_state(cluster.model, received)


def upload(cluster: Cluster, channel: Channel) -> dict[str, Tensor]:
    """Each device → edge: its segment's tunable modules after local training."""
    state = tunable_state(cluster.model)
    if cluster.at_edge:
        return state
    out: dict[str, Tensor] = {}
    for keys in cluster.device_keys:
        if keys:
            out.update(channel.send(TunableModules({k: state[k] for k in keys}), "edge_client", "up").state)
    return out


def train_cluster(
    cluster: Cluster,
    spec: MethodSpec,
    cfg: HfslParams,
    channel: Channel,
    accelerator: str,
    seed: int,
    steps: int | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[int, int]:
    """``steps`` client steps (else ``cfg.local_epochs`` epochs) of semi-supervised training inside
    one cluster; returns (steps, images trained on)."""
    split = spec.split and not cluster.at_edge
    path = SplitChain(cluster.segments, channel) if split else WholeModel(cluster.model)
    prior = class_prior(cluster.data.y, base_vit(cluster.model).cfg.num_classes)
    teacher = None
    if cfg.teacher != "self" and cfg.unlabelled_weight > 0:
        # the same devices hold a frozen copy of their segments (deepcopy keeps them sharing modules)
        t_model, t_segments = copy.deepcopy((cluster.model, cluster.segments))
        t_model.requires_grad_(False)
        teacher = (t_model, SplitChain(t_segments, channel) if split else WholeModel(t_model))
    module = SplitSemiSupervised(
        cluster.model, path, cfg, seed=seed, prior=prior, max_steps=steps, teacher=teacher, span=span
    )
    trainer = make_trainer(accelerator, max_epochs=cfg.local_epochs if steps is None else -1)
    trainer.fit(module, fixmatch_loader(cluster.data, cfg, seed=seed))
    cluster.model.cpu()
    return module.steps, module.images


def cloud_step(
    jobs: list[EdgeJob], states: list[dict[str, Tensor]], weights: list[int]
) -> list[dict[str, Tensor]]:
    """Edges → cloud → edges: FedAvg of the edges' modules, weighted by their clusters' examples."""
    uploaded = [
        j.channel.send(TunableModules(s), "cloud_edge", "up").state for j, s in zip(jobs, states, strict=True)
    ]
    merged = fedavg(list(zip(uploaded, weights, strict=True)))
    return [j.channel.send(TunableModules(merged), "cloud_edge", "down").state for j in jobs]


def run_hfsl_edges(
    jobs: list[EdgeJob], cfg: HfslParams, accelerator: str, workers: int | None = None
) -> dict[str, HfslOutcome]:
    """Runs ``cfg.rounds`` rounds of ``cfg.method`` for every edge; models are trained in place.

    ``workers``: clusters trained at once (default: one per core, at most one per cluster).
    """
    spec = method_spec(cfg.method)
    members = {
        j.name: [
            make_cluster(j.model, d, cfg.devices_per_cluster, spec.split, cfg.allocation) for d in j.clusters
        ]
        + ([make_cluster(j.model, j.own, cfg.devices_per_cluster, at_edge=True)] if j.own is not None else [])
        for j in jobs
    }
    states = {j.name: tunable_state(j.model) for j in jobs}
    server = {j.name: ServerState() for j in jobs}
    accuracy: dict[str, list[float]] = {j.name: [] for j in jobs}
    per_round: dict[str, list[dict[str, int]]] = {j.name: [] for j in jobs}
    compute: dict[str, list[tuple[int, int]]] = {j.name: [] for j in jobs}
    tasks = [(j, k, c) for j in jobs for k, c in enumerate(members[j.name])]
    steps = pooled_steps(cfg) if spec.pooled else cfg.local_steps
    workers = workers or max(1, min(len(tasks), os.cpu_count() or 1))
    # no oversubscription: each parallel cluster gets its share of torch's threads
    with share_cores(workers), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cluster") as pool:
        for r in range(cfg.rounds):
            for j in jobs:
                j.channel.ledger.reset()
                for cluster in members[j.name]:
                    if spec.federated or (r == 0 and not spec.pooled):
                        deliver(cluster, states[j.name], j.channel)

            def one(task: tuple[EdgeJob, int, Cluster], r: int = r) -> tuple[str, int, int]:
                job, k, cluster = task
                seed = job.seed + 1000 * r + k
                span = (r / cfg.rounds, (r + 1) / cfg.rounds)  # of the client lr schedule
                return (
                    job.name,
                    *train_cluster(cluster, spec, cfg, job.channel, accelerator, seed, steps, span),
                )

            done = list(pool.map(one, tasks))
            _aggregate(jobs, members, states, server, spec, cfg, r)
            for j in jobs:
                mine = [(s, n) for name, s, n in done if name == j.name]
                compute[j.name].append((sum(s for s, _ in mine), sum(n for _, n in mine)))
                accuracy[j.name].append(_accuracy(j, members[j.name], spec))
                per_round[j.name].append(j.channel.ledger.snapshot())
                log.info(
                    "hfsl[%s] %s round %d/%d accuracy=%.4f bytes=%s",
                    j.name,
                    cfg.method,
                    r + 1,
                    cfg.rounds,
                    accuracy[j.name][-1],
                    j.channel.ledger.by_link(),
                )
    depth = len(base_vit(jobs[0].model).blocks) if jobs else 0
    ranges = allocate_blocks(depth, cfg.devices_per_cluster, cfg.allocation) if spec.split else [(0, depth)]
    return {
        j.name: HfslOutcome(
            states[j.name],
            accuracy[j.name],
            per_round[j.name],
            ranges,
            [s for s, _ in compute[j.name]],
            [n for _, n in compute[j.name]],
            [] if spec.federated or spec.pooled else [c.model for c in members[j.name]],
        )
        for j in jobs
    }


def trained_examples(data: Split, cfg: HfslParams) -> int:
    """FedAvg's n_k (``cfg.fedavg_weights``): the examples a participant trains on — its labelled
    ones when the unlabelled loss is off (its unlabelled images then teach it nothing), else all of
    them — or its labelled examples whatever it trains on."""
    if cfg.unlabelled_weight == 0 or cfg.fedavg_weights == "labelled":
        return int(data.labelled.sum())
    return len(data)


def pooled_steps(cfg: HfslParams) -> int | None:
    """The pooled learner's steps per round: the federated participants' together (every cluster,
    and the edge when it joins), so pooling is compared at the same client compute."""
    if cfg.local_steps is None:
        return None
    return cfg.local_steps * (cfg.clusters + int(cfg.edge_joins))


def _aggregate(
    jobs: list[EdgeJob],
    members: dict[str, list[Cluster]],
    states: dict[str, dict[str, Tensor]],
    server: dict[str, ServerState],
    spec: MethodSpec,
    cfg: HfslParams,
    r: int,
) -> None:
    if not spec.federated:
        if spec.pooled:  # the oracle's one learner is the edge model
            for j in jobs:
                states[j.name] = tunable_state(members[j.name][0].model)
                load_tunable_state(j.model, states[j.name])
        return
    for j in jobs:
        # every participant uploads; one that trained on nothing (no labels, labels only) has no say
        uploads = [(upload(c, j.channel), trained_examples(c.data, cfg)) for c in members[j.name]]
        updates = [(state, n) for state, n in uploads if n > 0]
        states[j.name], server[j.name] = server_step(
            states[j.name],
            fedavg(updates),
            server[j.name],
            cfg.server_optimizer,
            cfg.server_lr,
            beta1=cfg.server_momentum,
        )
    if cfg.cloud_every and (r + 1) % cfg.cloud_every == 0 and len(jobs) > 1:
        weights = [sum(trained_examples(c.data, cfg) for c in members[j.name]) for j in jobs]
        merged = cloud_step(jobs, [states[j.name] for j in jobs], weights)
        states.update({j.name: s for j, s in zip(jobs, merged, strict=True)})
    for j in jobs:
        load_tunable_state(j.model, states[j.name])


def _accuracy(job: EdgeJob, clusters: list[Cluster], spec: MethodSpec) -> float:
    if spec.federated or spec.pooled:
        return job.evaluate(job.model)
    # local only: every cluster keeps its own model; report their mean
    return sum(job.evaluate(c.model) for c in clusters) / len(clusters)


def run_hfsl(
    edge_model: nn.Module,
    clusters: list[Split],
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
