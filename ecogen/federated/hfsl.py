"""HFSL — hybrid federated split learning for one edge and its client clusters.

Every round: the edge sends each device of each cluster the tunable modules of the segment it
holds; inside each cluster training is serial through the device chain (split learning, see
``ecogen.split``); clusters are independent of each other (parallel in a deployment, one after the
other in this process); each device uploads its segment's tunable modules and the edge averages the
clusters' modules weighted by their examples (FedAvg).  Everything that crosses a link goes
through one :class:`~ecogen.split.channel.Channel`, so the byte ledger is complete.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor, nn

from ecogen.config.params import HfslParams
from ecogen.data.prepared import Split
from ecogen.federated.aggregate import fedavg
from ecogen.models.vit import split_segments
from ecogen.peft.edge import base_vit
from ecogen.peft.tunable import load_tunable_state, tunable_state
from ecogen.split.allocation import allocate_blocks
from ecogen.split.chain import SplitChain
from ecogen.split.channel import Channel, TunableModules
from ecogen.split.semi_supervised import SplitSemiSupervised
from ecogen.training.trainer import loader, make_trainer

log = logging.getLogger("ecogen.hfsl")

Evaluate = Callable[[nn.Module], float]


@dataclass
class Cluster:
    """One client cluster: its own copy of the edge model, cut into per-device segments."""

    model: nn.Module
    segments: list[nn.Module]
    data: Split
    # full-model parameter names held by each device (empty for devices with nothing tunable)
    device_keys: list[list[str]] = field(default_factory=list)


@dataclass
class HfslOutcome:
    state: dict[str, Tensor]  # the edge's aggregated tunable modules after the last round
    accuracy: list[float]  # after each round
    bytes_per_round: list[dict[str, int]]  # "link/direction" → bytes, one dict per round
    block_ranges: list[tuple[int, int]]


def make_cluster(edge_model: nn.Module, data: Split, devices: int) -> Cluster:
    model = copy.deepcopy(edge_model)
    vit = base_vit(model)
    ranges = allocate_blocks(len(vit.blocks), devices)
    segments = split_segments(vit, ranges)
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    keys = [[names[id(p)] for p in seg.parameters() if id(p) in names] for seg in segments]
    return Cluster(model, segments, data, keys)


def deliver(cluster: Cluster, state: dict[str, Tensor], channel: Channel) -> None:
    """Edge → each device: the tunable modules of the segment that device holds."""
    received: dict[str, Tensor] = {}
    for keys in cluster.device_keys:
        if keys:
            msg = channel.send(TunableModules({k: state[k] for k in keys}), "edge_client", "down")
            received.update(msg.state)
    load_tunable_state(cluster.model, received)


def upload(cluster: Cluster, channel: Channel) -> dict[str, Tensor]:
    """Each device → edge: its segment's tunable modules after local training."""
    state = tunable_state(cluster.model)
    out: dict[str, Tensor] = {}
    for keys in cluster.device_keys:
        if keys:
            out.update(channel.send(TunableModules({k: state[k] for k in keys}), "edge_client", "up").state)
    return out


def run_hfsl(
    edge_model: nn.Module,
    clusters: list[Split],
    cfg: HfslParams,
    evaluate: Evaluate,
    accelerator: str,
    seed: int,
    label: str = "hfsl",
    channel: Channel | None = None,
) -> HfslOutcome:
    """Runs ``cfg.rounds`` HFSL rounds starting from ``edge_model``'s tunable modules."""
    channel = channel or Channel()
    members = [make_cluster(edge_model, data, cfg.devices_per_cluster) for data in clusters]
    global_state = tunable_state(edge_model)
    accuracy: list[float] = []
    per_round: list[dict[str, int]] = []
    for r in range(cfg.rounds):
        channel.ledger.reset()
        updates = []
        for k, cluster in enumerate(members):
            deliver(cluster, global_state, channel)
            chain = SplitChain(cluster.segments, channel)
            module = SplitSemiSupervised(cluster.model, chain, cfg, seed=seed + 1000 * r + k)
            trainer = make_trainer(accelerator, max_epochs=cfg.local_epochs)
            trainer.fit(module, loader(cluster.data, cfg.batch_size, shuffle=True, seed=seed + 1000 * r + k))
            cluster.model.cpu()
            updates.append((upload(cluster, channel), len(cluster.data)))
        global_state = fedavg(updates)
        load_tunable_state(edge_model, global_state)
        accuracy.append(evaluate(edge_model))
        per_round.append(channel.ledger.snapshot())
        log.info(
            "%s round %d/%d accuracy=%.4f bytes=%s",
            label,
            r + 1,
            cfg.rounds,
            accuracy[-1],
            channel.ledger.by_link(),
        )
    return HfslOutcome(
        global_state,
        accuracy,
        per_round,
        allocate_blocks(len(base_vit(edge_model).blocks), cfg.devices_per_cluster),
    )
