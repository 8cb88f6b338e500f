"""Which device holds which part of the model.

Device 0 (start) holds the embedding, device C-1 (end) the norm + head, and the C-2 middle
devices hold contiguous block ranges, by one of the rules in ``RULES`` (``hfsl.allocation``):

* ``balanced``: ranges as equal as possible; when the depth does not divide evenly the *earlier*
  middle devices take one block more (they sit closer to the data holder).
* ``front``: every middle device but the last holds one block and the last holds the rest, for
  clusters whose last middle device is markedly stronger than the others.
* ``latency`` / ``energy``: the contiguous ranges that minimise the modelled round latency /
  device energy of the cluster's devices (``costs.cluster_devices``, ``ecogen/costs/``) — the
  split-point placement problem of CHEESE and GaisNet, solved exactly.  They need the modelled
  per-block costs (:class:`BlockCosts`, from ``ecogen.costs.round.block_costs``); the other
  rules ignore them.

Every rule gives every middle device ≥1 block, and the chain computes the same function whatever
the ranges (``split_segments``), so a rule changes where time and energy go, never the accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BlockCosts:
    """What a cost-aware rule weighs: ``seconds[i][k]`` and ``joules[i][k]`` are the modelled
    round latency and round energy that block ``k`` adds when middle device ``i`` holds it.

    Both objectives are sums over (device, block) because the chain is sequential: a round's
    latency is the sum of its devices' busy times plus link times that do not depend on the
    ranges, and its energy is Σ busy·(W_busy − W_idle) plus every device idling through the whole
    round (``ecogen/costs/model.py`` derives the per-block joules).
    """

    seconds: Sequence[Sequence[float]]  # (middle devices, depth)
    joules: Sequence[Sequence[float]]  # (middle devices, depth)


Rule = Callable[[int, int, BlockCosts | None], list[int]]


def _balanced(depth: int, middle: int, costs: BlockCosts | None = None) -> list[int]:
    base, extra = divmod(depth, middle)
    return [base + (1 if i < extra else 0) for i in range(middle)]


def _front(depth: int, middle: int, costs: BlockCosts | None = None) -> list[int]:
    return [1] * (middle - 1) + [depth - (middle - 1)]


def cheapest_split(cost: Sequence[Sequence[float]]) -> list[int]:
    """Blocks per device of the contiguous split (≥1 block each, in chain order) that minimises
    Σ_i Σ_{k held by i} cost[i][k]: exact, by dynamic programming over (device, blocks so far),
    O(devices · depth²).  Ties go to the split that gives earlier devices more blocks."""
    middle, depth = len(cost), len(cost[0])
    inf = float("inf")
    # best[i][k]: least cost of devices 0..i-1 holding blocks 0..k-1; cut[i][k]: where device i-1 starts
    best = [[inf] * (depth + 1) for _ in range(middle + 1)]
    cut = [[0] * (depth + 1) for _ in range(middle + 1)]
    best[0][0] = 0.0
    for i in range(1, middle + 1):
        for k in range(i, depth - (middle - i) + 1):
            for start in range(k - 1, i - 2, -1):  # device i-1 holds blocks start..k-1
                value = best[i - 1][start] + sum(cost[i - 1][start:k])
                if value < best[i][k]:
                    best[i][k], cut[i][k] = value, start
    sizes, k = [], depth
    for i in range(middle, 0, -1):
        sizes.append(k - cut[i][k])
        k = cut[i][k]
    return sizes[::-1]


class _Weighing:
    """A rule that weighs the modelled block costs: the cheapest split by one objective."""

    def __init__(self, objective: str) -> None:
        self.objective = objective  # latency | energy

    def __call__(self, depth: int, middle: int, costs: BlockCosts | None = None) -> list[int]:
        if costs is None:
            raise ValueError(
                f"allocation rule {self.objective!r} weighs the cluster's modelled costs "
                "(costs.cluster_devices): its caller must pass "
                "costs=ecogen.costs.round.block_costs(params, model)"
            )
        table = costs.seconds if self.objective == "latency" else costs.joules
        if len(table) != middle or any(len(row) != depth for row in table):
            raise ValueError(f"block costs are not (middle devices {middle}, depth {depth})")
        return cheapest_split(table)


# rule name → blocks per middle device, given the depth, the middle devices and the modelled block
# costs (None for a rule that ignores them); a new rule is an entry
RULES: dict[str, Rule] = {
    "balanced": _balanced,
    "front": _front,
    "latency": _Weighing("latency"),
    "energy": _Weighing("energy"),
}


def weighs_costs(rule: str) -> bool:
    """Does ``rule`` need :class:`BlockCosts` (so a caller counts them only then)."""
    return isinstance(RULES.get(rule), _Weighing)


def allocate_blocks(
    depth: int, devices: int, rule: str = "balanced", costs: BlockCosts | None = None
) -> list[tuple[int, int]]:
    """Half-open block ranges ``[(start, end), ...]``, one per middle device."""
    if devices < 3:
        raise ValueError(f"a cluster needs ≥3 devices (start, middle, end), got {devices}")
    middle = devices - 2
    if depth < middle:
        raise ValueError(f"{middle} middle devices cannot share {depth} blocks (≥1 block each)")
    if rule not in RULES:
        raise ValueError(f"unknown allocation rule {rule!r}; known: {', '.join(RULES)}")
    ranges, start = [], 0
    for size in RULES[rule](depth, middle, costs):
        ranges.append((start, start + size))
        start += size
    return ranges
