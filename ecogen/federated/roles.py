"""The two roles of an HFSL round and the only things they exchange.

* :class:`ClusterClient` — one client cluster: its devices each hold a segment of its own copy of
  the model (or, for an unsplit method, one device holds all of it).  It receives the tunable
  modules of its segments from the edge, trains, and sends them back.
* :class:`EdgeServer` — one edge: the model its clusters start from, the aggregated modules, its
  server-optimiser state and its :class:`~ecogen.split.channel.Channel`.

Everything that passes between them is a :class:`~ecogen.split.channel.TunableModules` message
sent through the edge's channel, so the byte ledger sees every byte.  What a round does with
them — who receives, how updates are combined, what is evaluated — is the method's
:class:`~ecogen.federated.strategies.base.Strategy`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from torch import Tensor, nn

from ecogen.data.prepared import Split
from ecogen.federated.aggregate import fedavg
from ecogen.federated.fedex import BaseLog
from ecogen.federated.server_opt import ServerState
from ecogen.models.vit import split_segments
from ecogen.peft.edge import base_vit
from ecogen.peft.tunable import load_tunable_state, tunable_state
from ecogen.split.allocation import BlockCosts, allocate_blocks
from ecogen.split.channel import Channel, SegmentWeights, TunableModules

Evaluate = Callable[[nn.Module], float]


@dataclass
class ClusterClient:
    """One client cluster: its own copy of the model, cut into per-device segments."""

    over_links: ClassVar[bool] = True  # its modules and activations cross links (the ledger counts them)

    model: nn.Module
    segments: list[nn.Module]
    data: Split
    # full-model parameter names held by each device (empty for devices with nothing tunable)
    device_keys: list[list[str]] = field(default_factory=list)
    # this round: the device that runs each segment (ecogen.federated.faults.hosts); empty: its own
    hosts: list[int] = field(default_factory=list)
    # DP-SGD (hfsl.dp_mechanism: dp_sgd): the steps it took, as an accountant history
    # [(σ, q, steps)]; the edge's record of it (EdgeServer.dp_history), bound at each round's start
    dp_history: list[tuple[float, float, int]] = field(default_factory=list)
    # FedEx-LoRA: the edge's corrections of the frozen weights its devices hold (BaseLog.version)
    base_version: int = 0

    @classmethod
    def of(
        cls,
        edge_model: nn.Module,
        data: Split,
        devices: int,
        split: bool = True,
        rule: str = "balanced",
        costs: BlockCosts | None = None,
    ) -> ClusterClient:
        """A cluster holding a copy of ``edge_model``, cut over ``devices`` devices when ``split``
        (``rule`` of ``ecogen.split.allocation``, with the block ``costs`` a cost-aware rule weighs)."""
        model = copy.deepcopy(edge_model)
        if split and cls.over_links:
            vit = base_vit(model)
            segments = split_segments(vit, allocate_blocks(len(vit.blocks), devices, rule, costs))  # type: ignore[arg-type]
        else:
            segments = [model]
        names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
        keys = [[names[id(p)] for p in seg.parameters() if id(p) in names] for seg in segments]
        return cls(model, segments, data, keys)

    @property
    def devices(self) -> int:
        """Devices the participant needs this round (a cluster: its chain's)."""
        return len(self.segments)

    def crossings(self) -> list[bool]:
        """Per boundary between segments: do its two sides run on different devices this round."""
        hosts = self.hosts or list(range(len(self.segments)))
        return [hosts[i] != hosts[i + 1] for i in range(len(self.segments) - 1)]

    def hand_over(self, channel: Channel) -> None:
        """Edge → a device standing in for an offline one: the frozen weights of the segment it
        takes on (its tunable modules come with the round's delivery, to the same device)."""
        for i, host in enumerate(self.hosts):
            if host != i:
                seg = self.segments[i]
                frozen: dict[str, Tensor] = {n: p for n, p in seg.named_parameters() if not p.requires_grad}
                frozen |= dict(seg.named_buffers())
                channel.send(SegmentWeights(frozen), "edge_client", "down")

    def base_devices(self) -> list[list[str]] | None:
        """The tunable names each device holds, for the edge's corrections of frozen weights
        (:meth:`~ecogen.federated.fedex.BaseLog.sync`); None: beside the edge, no link."""
        return self.device_keys

    def receive(self, state: dict[str, Tensor], channel: Channel) -> None:
        """Edge → each device: the tunable modules of the segment that device holds."""
        received: dict[str, Tensor] = {}
        for keys in self.device_keys:
            if keys:
                msg = channel.send(TunableModules({k: state[k] for k in keys}), "edge_client", "down")
                received.update(msg.state)
        load_tunable_state(self.model, received)

    def send(self, channel: Channel) -> dict[str, Tensor]:
        """Each device → edge: its segment's tunable modules after local training."""
        state = tunable_state(self.model)
        out: dict[str, Tensor] = {}
        for keys in self.device_keys:
            if keys:
                out.update(
                    channel.send(TunableModules({k: state[k] for k in keys}), "edge_client", "up").state
                )
        return out


class EdgeClient(ClusterClient):
    """The edge's own participant (``hfsl.edge_joins``): the whole model in one place, trained on
    the edge's labelled set; nothing it does crosses a link, and its update never leaves the edge."""

    over_links: ClassVar[bool] = False

    @property
    def devices(self) -> int:
        return 0

    def base_devices(self) -> list[list[str]] | None:
        return None

    def receive(self, state: dict[str, Tensor], channel: Channel) -> None:
        load_tunable_state(self.model, state)

    def send(self, channel: Channel) -> dict[str, Tensor]:
        return tunable_state(self.model)


@dataclass
class EdgeServer:
    """One edge's side of its rounds: the model (trained in place), its clusters and its links."""

    name: str
    model: nn.Module
    clients: list[ClusterClient]
    evaluate: Evaluate
    seed: int
    channel: Channel = field(default_factory=Channel)
    state: dict[str, Tensor] = field(default_factory=dict)  # the aggregated tunable modules
    server: ServerState = field(default_factory=ServerState)  # the server optimiser's moments
    # this round: which participants take part, and which of them miss the upload deadline
    # (ecogen.federated.faults); empty: all take part, none is late
    present: list[bool] = field(default_factory=list)
    late: list[bool] = field(default_factory=list)
    # where rounds draw their clusters (hfsl.clusters_per_round), ``clients`` are this round's and
    # ``numbers`` their clusters' numbers in the edge's population (the edge's own participant: one
    # past the last); empty: ``clients`` are every cluster, numbered by position
    numbers: list[int] = field(default_factory=list)
    # DP-SGD: each participant's accountant history by its number (ClusterClient.dp_history)
    dp_history: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)
    # FedEx-LoRA (hfsl.lora_aggregation: fedex): the residuals folded into the frozen weights of
    # its model's LoRA layers; None: they are the FM's, as delivered
    bases: BaseLog | None = None

    def __post_init__(self) -> None:
        if not self.state:
            self.state = tunable_state(self.model)

    def number(self, k: int) -> int:
        """The cluster number of ``clients[k]``: what its seeds, and whether it attacks, follow."""
        return self.numbers[k] if self.numbers else k

    def takes_part(self, k: int) -> bool:
        return not self.present or self.present[k]

    def is_late(self, k: int) -> bool:
        return bool(self.late) and self.late[k]

    def broadcast(self) -> None:
        for k, client in enumerate(self.clients):
            if self.takes_part(k):  # an offline device receives nothing
                if self.bases is not None:
                    client.base_version = self.bases.sync(
                        client.model, client.base_devices(), client.base_version, self.model, self.channel
                    )
                client.receive(self.state, self.channel)

    def install(self, state: dict[str, Tensor]) -> None:
        """The edge's model takes ``state`` as its tunable modules."""
        self.state = state
        load_tunable_state(self.model, state)


def cloud_average(edges: list[EdgeServer], weights: list[int]) -> None:
    """Edges → cloud → edges: FedAvg of the edges' modules, weighted by their clusters' examples."""
    uploaded = [e.channel.send(TunableModules(e.state), "cloud_edge", "up").state for e in edges]
    merged = fedavg(list(zip(uploaded, weights, strict=True)))
    for e in edges:
        e.state = e.channel.send(TunableModules(merged), "cloud_edge", "down").state
