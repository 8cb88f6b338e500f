"""One request through a cluster's split chain, timed, sized and costed hop by hop.

The path of a request the cache cannot answer: the client uploads its image to the edge, the edge
hands it to the chain's start device, the activations cross every device-to-device hop through a
:class:`~ecogen.split.channel.Channel` (so the ledger counts them as training's do), and the end
device's class probabilities go back to the edge and on to the client.  Compute is measured per
segment on this host; every hop's seconds and joules are the project's cost model
(``costs.links``, :func:`~ecogen.costs.model.link_cost`) on the bytes it carried: ``edge_client``
for client↔edge and edge↔device, ``d2d`` between devices.  A device's energy is its class's busy
power (``costs.devices``, the chain's classes from ``costs.cluster_devices``) times the compute
measured here; the edge's (hash, features) is ``edge_server``'s.  Host seconds at a device's power:
a stated model, not a measurement of the device.

Built from a finished run (:func:`chain_from_run`, the edge model the infer stage serves) or from
a freshly initialised ViT (:func:`fresh_chain`, for tests).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ecogen.config.load import resolve_run
from ecogen.config.params import CostParams, LinkClass
from ecogen.costs.model import link_cost
from ecogen.costs.round import block_ranges
from ecogen.data.prepared import PreparedData, Split, to_float
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import Embedding, ViT, ViTConfig, split_segments
from ecogen.peft.edge import base_vit, load_edge_model
from ecogen.split.allocation import allocate_blocks
from ecogen.split.channel import Activation, Channel, payload_bytes
from ecogen.stages.common import edge_seed
from ecogen.workspace import Workspace

EDGE_CLASS = "edge_server"  # the device class of costs.devices the edge itself is


@dataclass(frozen=True)
class ChainAnswer:
    probabilities: Tensor  # (classes,)
    compute_s: list[float]  # per device segment
    hop_bytes: list[int]  # per device-to-device hop


@dataclass
class PathCost:
    """What a request's hops add up to: modelled link seconds and joules, bytes carried."""

    link_s: float = 0.0
    link_j: float = 0.0
    bytes: int = 0

    def hop(self, n_bytes: int, link: LinkClass) -> None:
        cost = link_cost(n_bytes, 1, link)
        self.link_s += cost.seconds
        self.link_j += cost.joules
        self.bytes += n_bytes


class SplitChain:
    """A cluster's device segments behind one edge, answering one image at a time.

    ``embedding``: the FM embedding whose patch tokens the cache compares near duplicates by
    (:meth:`features`); the edge holds it, and it costs a fraction of the chain.  None where near
    duplicates are not looked up.
    """

    def __init__(
        self,
        segments: list[nn.Module],
        costs: CostParams,
        image_shape: tuple[int, int, int],
        embedding: Embedding | None = None,
    ) -> None:
        if len(segments) < 2:
            raise ValueError(f"a split chain needs at least two segments, got {len(segments)}")
        if EDGE_CLASS not in costs.devices:
            raise ValueError(f"costs.devices has no {EDGE_CLASS!r} class: the edge's power is its")
        self.segments = segments
        self.links = costs.links
        self.device_watts = [costs.devices[c].watts_busy for c in costs.chain(len(segments))]
        self.edge_watts = costs.devices[EDGE_CLASS].watts_busy
        self.image_shape = image_shape  # (C, H, W) of the images the model takes
        self.embedding = embedding
        self.channel = Channel()
        self._lock = threading.Lock()  # the devices take one request at a time

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:  # (1, C, H, W) float → (N·dim,)
        if self.embedding is None:
            raise ValueError("this chain was built without the FM embedding: no near-duplicate features")
        return self.embedding.patches(x).flatten()

    @torch.no_grad()
    def answer(self, x: Tensor) -> ChainAnswer:  # (1, C, H, W) float in [-1, 1]
        compute, hops = [], []
        with self._lock:
            h = x
            for i, segment in enumerate(self.segments):
                if i > 0:
                    sent = Activation(h)
                    hops.append(payload_bytes(sent))
                    h = self.channel.send(sent, "d2d", "forward").tensor
                t0 = time.perf_counter()
                h = segment(h)
                compute.append(time.perf_counter() - t0)
        return ChainAnswer(h.softmax(-1)[0], compute, hops)

    def image_bytes(self) -> int:
        c, height, width = self.image_shape
        return c * height * width  # uint8

    def edge_round_trip(self, answer_bytes: int) -> PathCost:
        """Client → edge (the image) and edge → client (the answer): every request's part."""
        cost = PathCost()
        cost.hop(self.image_bytes(), self.links["edge_client"])
        cost.hop(answer_bytes, self.links["edge_client"])
        return cost

    def add_chain_hops(self, cost: PathCost, hop_bytes: list[int], answer_bytes: int) -> None:
        """A miss's part: edge → start device, every device hop, end device → edge."""
        cost.hop(self.image_bytes(), self.links["edge_client"])
        for n in hop_bytes:
            cost.hop(n, self.links["d2d"])
        cost.hop(answer_bytes, self.links["edge_client"])

    def device_joules(self, compute_s: list[float]) -> float:
        return sum(w * s for w, s in zip(self.device_watts, compute_s, strict=True))


def chain_from_run(
    root: Path, pipeline: str | None = None, domain: str | None = None, profile: str | None = None
) -> tuple[SplitChain, Split]:
    """The split chain of edge ``domain`` (default: the first) of pipeline run ``runs/PIPELINE/``,
    as the infer stage builds it, and that edge's test set (the images a trace asks for)."""
    run = resolve_run(root, pipeline, profile)
    params, ws = run.params, Workspace(root / "runs" / run.name)
    domain = domain or str(params.data.domains[0])
    if domain not in [str(d) for d in params.data.domains]:
        raise ValueError(f"no edge {domain!r} in this run; its edges: {params.data.domains}")
    tunable = ws.hfsl(domain) / "tunable.pt"
    model = load_edge_model(load_fm(ws.fm), params.peft, tunable, edge_seed(params, domain)).eval()
    vit = base_vit(model)
    ranges = block_ranges(params, model)
    test = PreparedData(ws.data).test(domain)
    shape = (vit.cfg.channels, vit.cfg.image_size, vit.cfg.image_size)
    return SplitChain(split_segments(vit, ranges), params.costs, shape, vit.embedding), test


def fresh_chain(cfg: ViTConfig, devices: int = 3, seed: int = 0) -> SplitChain:
    """A freshly initialised ViT's chain (weights drawn from ``seed``): what tests serve."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vit = ViT(cfg).eval()
    ranges = allocate_blocks(cfg.depth, devices)
    shape = (cfg.channels, cfg.image_size, cfg.image_size)
    return SplitChain(split_segments(vit, ranges), CostParams(), shape, vit.embedding)


def as_input(image: Tensor) -> Tensor:
    """uint8 (C, H, W) → float (1, C, H, W) in [-1, 1], as the chain takes it."""
    return to_float(image).unsqueeze(0)
