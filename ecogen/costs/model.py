"""The cost model of one HFSL round of one cluster: pure arithmetic over counted FLOPs, device
classes and link classes (``costs`` params), no torch.

A cluster's chain is sequential: each client step sends its batch forward down the chain
(start → middle devices → end) and the gradients back up it, one device busy at a time, so

    round latency = steps × (Σ_devices compute per step + Σ_hops link time per step)
                    + the round's module exchange with the edge (edge↔client)

    device energy = W_busy · busy time + W_idle · (round latency − busy time)
    link energy   = bytes · J/byte

Compute time is FLOPs ÷ sustained FLOP/s (no memory-bound or launch-overhead term: a model, not
a simulator).  A hop carries one activation per step, and a gradient back when a device before
it has tunable weights; an activation is images × tokens × dim × 4 bytes (the labels that ride
with it, 8 bytes an image, are left out).  The module exchange is each device's tunable bytes
down and up, one device after the other over the edge's link.  Every name says ``modelled``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ecogen.config.params import DeviceClass, LinkClass
from ecogen.costs.flops import SegmentFlops
from ecogen.split.allocation import BlockCosts

FLOAT_BYTES = 4


@dataclass(frozen=True)
class StepLoad:
    """What one client step pushes through the chain, and how many steps a round has."""

    steps: int
    forward_images: int  # images through every segment's forward (with grad or not)
    backward_images: int  # of which images whose loss is backpropagated
    activation_bytes: int  # one image's tokens between two segments: tokens × dim × 4


@dataclass(frozen=True)
class LinkCost:
    bytes: int
    seconds: float
    joules: float


@dataclass(frozen=True)
class RoundCosts:
    """Modelled figures of one round of one cluster: per device (role, class) and per link."""

    roles: list[str]  # start, middle0, middle1, …, end
    classes: list[str]  # the device class at each role
    blocks: list[tuple[int, int]]  # the middle devices' block ranges
    busy_s: list[float]
    energy_j: list[float]
    links: dict[str, LinkCost] = field(default_factory=dict)
    latency_s: float = 0.0

    @property
    def device_energy_j(self) -> float:
        return sum(self.energy_j)

    @property
    def link_energy_j(self) -> float:
        return sum(link.joules for link in self.links.values())

    def metrics(self) -> dict[str, float]:
        """Flat ``modelled_…`` names for a tracker, apart from any measured (CodeCarbon) figure."""
        out = {"modelled_round_s": self.latency_s, "modelled_round_device_j": self.device_energy_j}
        out["modelled_round_link_j"] = self.link_energy_j
        for role, busy, joules in zip(self.roles, self.busy_s, self.energy_j, strict=True):
            out[f"modelled_{role}_busy_s"], out[f"modelled_{role}_j"] = busy, joules
        for name, link in self.links.items():
            out[f"modelled_{name}_bytes"] = float(link.bytes)
            out[f"modelled_{name}_s"], out[f"modelled_{name}_j"] = link.seconds, link.joules
        return out


def link_cost(n_bytes: int, messages: int, link: LinkClass) -> LinkCost:
    seconds = n_bytes * 8 / (link.mbps * 1e6) + messages * link.latency_ms / 1e3
    return LinkCost(n_bytes, seconds, n_bytes * link.joules_per_byte)


def _step_flops(flops: SegmentFlops, load: StepLoad) -> list[float]:
    """FLOPs of one step in each segment (embedding, blocks…, head)."""
    fwd, bwd = load.forward_images / flops.images, load.backward_images / flops.images
    return [f * fwd + b * bwd for f, b in zip(flops.forward, flops.backward, strict=True)]


def busy_seconds(
    flops: SegmentFlops, load: StepLoad, chain: Sequence[DeviceClass], ranges: Sequence[tuple[int, int]]
) -> list[float]:
    """Each device's compute seconds over the round: start (embedding), middle (its blocks), end (head)."""
    per = _step_flops(flops, load)
    blocks = per[1:-1]
    work = [per[0], *(sum(blocks[a:b]) for a, b in ranges), per[-1]]
    if len(work) != len(chain):
        raise ValueError(f"{len(chain)} device classes for a chain of {len(work)} segments")
    return [load.steps * w / device.flops for w, device in zip(work, chain, strict=True)]


def block_costs(flops: SegmentFlops, load: StepLoad, chain: Sequence[DeviceClass]) -> BlockCosts:
    """Per middle device and block, the round latency and energy the block adds where it sits.

    Latency: the block's round FLOPs ÷ the device's FLOP/s.  Energy: with R = Σ busy + (link time,
    the same for every split), E = Σ_j busy_j·(W_busy_j − W_idle_j) + R·Σ_j W_idle_j, so a
    second of busy time on device i costs W_busy_i − W_idle_i + Σ_j W_idle_j joules."""
    per = _step_flops(flops, load)[1:-1]
    idle = sum(d.watts_idle for d in chain)
    seconds = [[load.steps * f / d.flops for f in per] for d in chain[1:-1]]
    joules = [
        [s * (d.watts_busy - d.watts_idle + idle) for s in row]
        for row, d in zip(seconds, chain[1:-1], strict=True)
    ]
    return BlockCosts(seconds, joules)


def round_costs(
    flops: SegmentFlops,
    load: StepLoad,
    chain: Sequence[tuple[str, DeviceClass]],
    ranges: Sequence[tuple[int, int]],
    links: dict[str, LinkClass],
    tunable_bytes: Sequence[int],
) -> RoundCosts:
    """The modelled round of one cluster whose devices are ``chain`` (class name, class) holding
    ``ranges``; ``tunable_bytes``: what each device's segment exchanges with the edge each way."""
    devices = [d for _, d in chain]
    busy = busy_seconds(flops, load, devices, ranges)
    hops, trains = len(chain) - 1, _trains(flops, ranges)
    gradient_hops = sum(any(trains[: h + 1]) for h in range(hops))  # a device before the hop trains
    messages = load.steps * (hops + gradient_hops)  # one message per hop and direction a step
    d2d_bytes = (
        load.steps
        * load.activation_bytes
        * (hops * load.forward_images + gradient_hops * load.backward_images)
    )
    d2d = link_cost(d2d_bytes, messages, links["d2d"])
    exchange = link_cost(2 * sum(tunable_bytes), 2 * sum(1 for b in tunable_bytes if b), links["edge_client"])
    latency = sum(busy) + d2d.seconds + exchange.seconds
    energy = [d.watts_busy * b + d.watts_idle * (latency - b) for d, b in zip(devices, busy, strict=True)]
    middle = [f"middle{i}" for i in range(len(ranges))]
    return RoundCosts(
        ["start", *middle, "end"],
        [name for name, _ in chain],
        list(ranges),
        busy,
        energy,
        {"d2d": d2d, "edge_client": exchange},
        latency,
    )


def _trains(flops: SegmentFlops, ranges: Sequence[tuple[int, int]]) -> list[bool]:
    """Per device: does its segment hold tunable weights."""
    blocks = flops.trains[1:-1]
    return [flops.trains[0], *(any(blocks[a:b]) for a, b in ranges), flops.trains[-1]]
