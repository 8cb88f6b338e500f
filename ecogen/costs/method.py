"""Modelled device and link cost of a whole hfsl stage at one edge, for any method: EcoGen and
every baseline on the same footing, from what the stage measured (images trained on, bytes sent).

Counting images and bytes as the rounds recorded them, rather than re-deriving them from the
params, keeps the comparison honest across methods whose rounds differ (local epochs, dropout,
pooled data); only their placement differs:

* a **split** method (EcoGen, SplitFed, FedProx, local) runs each segment on its device of the
  cluster's chain (``costs.cluster_devices``): the start the embedding, the middle devices their
  blocks, the end the head; every device of a cluster idles while another computes or a link
  carries its bytes;
* a **pooled** one (centralized, pooled labels), or one no cluster takes part in (the edge
  alone), trains on one ``edge_server``;
* any other (FedAvg-full, FedAvg-PEFT) trains the whole model on one device of the chain's first
  class (the phone holding the data), which also sends the uploads.

Time is the stage's modelled wall time: clusters train in parallel, each on its own devices and
links, so the summed cluster time is divided by the clusters training in a round.  Per-message
link latency is left out (the measured bytes do not say how many messages carried them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecogen.config.params import DeviceClass, LinkClass
from ecogen.costs.flops import SegmentFlops

POOLED_DEVICE = "edge_server"  # where a central learner trains
DEVICE_LINKS = ("d2d", "edge_client")  # the links a client device's radio drives


@dataclass(frozen=True)
class MethodKind:
    """How a strategy places its training (``Strategy.split`` / ``.pooled``)."""

    split: bool
    pooled: bool = False


@dataclass(frozen=True)
class Workload:
    """What the stage measured at one edge, summed over its rounds and participants."""

    forward_images: float  # images through a forward pass (an unlabelled weak view counts too)
    backward_images: float  # of which images whose loss is backpropagated
    cluster_rounds: float  # (round, cluster) pairs that trained: Σ_rounds clusters taking part
    rounds: int
    link_bytes: Mapping[str, float]  # link class → bytes over the stage, every direction


@dataclass(frozen=True)
class MethodCosts:
    """Modelled figures of the stage at one edge; ``roles``: joules per device role."""

    device_j: float
    link_j: dict[str, float]
    time_s: float
    roles: dict[str, float]

    @property
    def link_energy_j(self) -> float:
        return sum(self.link_j.values())

    def metrics(self) -> dict[str, float]:
        """Flat ``modelled_…`` names, never mixed with CodeCarbon's measured host figures."""
        out = {
            "modelled_device_energy_j": self.device_j,
            "modelled_link_energy_j": self.link_energy_j,
            "modelled_time_s": self.time_s,
        }
        out |= {f"modelled_{link}_energy_j": j for link, j in self.link_j.items()}
        return out | {f"modelled_{role}_energy_j": j for role, j in self.roles.items()}


def _segment_work(flops: SegmentFlops, work: Workload) -> list[float]:
    """FLOPs of each segment (embedding, blocks…, head) over the whole stage."""
    fwd, bwd = work.forward_images / flops.images, work.backward_images / flops.images
    return [f * fwd + b * bwd for f, b in zip(flops.forward, flops.backward, strict=True)]


def _link_costs(work: Workload, links: Mapping[str, LinkClass]) -> tuple[dict[str, float], float]:
    """Joules per device link, and the seconds all of them take (serially, summed over clusters)."""
    used = {k: b for k, b in work.link_bytes.items() if k in DEVICE_LINKS}
    joules = {k: b * links[k].joules_per_byte for k, b in used.items()}
    return joules, sum(b * 8 / (links[k].mbps * 1e6) for k, b in used.items())


def method_costs(
    kind: MethodKind,
    flops: SegmentFlops,
    chain: Sequence[tuple[str, DeviceClass]],
    ranges: Sequence[tuple[int, int]],
    devices: Mapping[str, DeviceClass],
    links: Mapping[str, LinkClass],
    work: Workload,
) -> MethodCosts:
    """The stage's modelled device joules, link joules and wall seconds at one edge.

    ``chain``: one cluster's (class name, class) from start to end; ``ranges``: the middle
    devices' block ranges (split methods); ``devices``: every class (a pooled learner's
    ``edge_server``)."""
    per_segment = _segment_work(flops, work)
    link_j, link_s = _link_costs(work, links)
    if kind.split:
        blocks = per_segment[1:-1]
        work_of = [per_segment[0], *(sum(blocks[a:b]) for a, b in ranges), per_segment[-1]]
        roles = ["start", *(f"middle{i}" for i in range(len(ranges))), "end"]
        placed = [d for _, d in chain]
    else:
        work_of, roles = [sum(per_segment)], ["pooled" if kind.pooled else "client"]
        placed = [devices[POOLED_DEVICE] if kind.pooled else chain[0][1]]
    if len(work_of) != len(placed):
        raise ValueError(f"{len(placed)} device classes for a chain of {len(work_of)} segments")
    busy = [w / d.flops for w, d in zip(work_of, placed, strict=True)]
    total = sum(busy) + link_s  # every cluster's devices over the stage, one busy at a time
    energy = [d.watts_busy * b + d.watts_idle * (total - b) for d, b in zip(placed, busy, strict=True)]
    # one central learner runs alone; clusters (and their phones) run side by side
    parallel = 1.0 if kind.pooled or not work.rounds else max(work.cluster_rounds / work.rounds, 1.0)
    return MethodCosts(sum(energy), link_j, total / parallel, dict(zip(roles, energy, strict=True)))


def central_costs(flops: float, device: DeviceClass) -> dict[str, float]:
    """A stage that trains on one device alone (pretrain on ``cloud_gpu``, a fine-tune on
    ``edge_server``): ``flops`` over the stage at the device's FLOP/s and busy watts, with the
    names the hfsl stage uses; no link carries anything while it trains."""
    seconds = flops / device.flops
    return {"modelled_device_energy_j": device.watts_busy * seconds, "modelled_time_s": seconds}
