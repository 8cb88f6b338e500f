"""Block allocation over the middle devices of a cluster."""

import itertools
import random

import pytest

from ecogen.split.allocation import BlockCosts, allocate_blocks, cheapest_split


@pytest.mark.parametrize("devices", range(3, 9))
@pytest.mark.parametrize("depth", range(2, 13))
def test_ranges_tile_the_depth_contiguously_and_evenly(devices: int, depth: int) -> None:
    middle = devices - 2
    if depth < middle:
        with pytest.raises(ValueError):
            allocate_blocks(depth, devices)
        return
    ranges = allocate_blocks(depth, devices)
    assert len(ranges) == middle
    assert ranges[0][0] == 0 and ranges[-1][1] == depth
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    sizes = [e - s for s, e in ranges]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # earlier devices take the extra blocks


def test_fewer_than_three_devices_is_an_error() -> None:
    with pytest.raises(ValueError, match="≥3"):
        allocate_blocks(4, 2)


@pytest.mark.parametrize("devices", range(3, 9))
@pytest.mark.parametrize("depth", range(2, 13))
def test_front_rule_gives_every_middle_device_one_block_but_the_last(devices: int, depth: int) -> None:
    middle = devices - 2
    if depth < middle:
        with pytest.raises(ValueError):
            allocate_blocks(depth, devices, "front")
        return
    ranges = allocate_blocks(depth, devices, "front")
    sizes = [e - s for s, e in ranges]
    assert ranges[0][0] == 0 and ranges[-1][1] == depth
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert sizes[:-1] == [1] * (middle - 1) and sizes[-1] == depth - middle + 1


def test_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown allocation rule"):
        allocate_blocks(4, 3, "random")  # type: ignore[arg-type]


def _compositions(depth: int, parts: int) -> list[tuple[int, ...]]:
    """Every way to give ``parts`` devices ≥1 of ``depth`` blocks, in chain order (brute force)."""
    return [
        tuple(b - a for a, b in zip((0, *cuts), (*cuts, depth), strict=True))
        for cuts in itertools.combinations(range(1, depth), parts - 1)
    ]


def _split_cost(cost: list[list[float]], sizes: tuple[int, ...] | list[int]) -> float:
    bounds = list(itertools.accumulate(sizes, initial=0))
    return sum(sum(row[a:b]) for row, a, b in zip(cost, bounds, bounds[1:], strict=False))


@pytest.mark.parametrize("seed", range(20))
def test_cheapest_split_is_the_brute_force_minimum(seed: int) -> None:
    rng = random.Random(seed)
    depth, middle = 6, 3
    speed = [rng.uniform(0.1, 10.0) for _ in range(middle)]  # heterogeneous devices
    block = [rng.uniform(0.5, 2.0) for _ in range(depth)]  # blocks that differ (prompts, adapters)
    cost = [[b / s for b in block] for s in speed]
    best = min(_split_cost(cost, c) for c in _compositions(depth, middle))
    sizes = cheapest_split(cost)
    assert sum(sizes) == depth and min(sizes) >= 1
    assert _split_cost(cost, sizes) == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("rule", ["latency", "energy"])
def test_cost_rules_follow_their_objective_and_other_rules_ignore_the_costs(rule: str) -> None:
    fast_last = [[1.0] * 5, [1.0] * 5, [0.1] * 5]  # the last middle device is 10× faster
    slow_last = fast_last[::-1]
    costs = BlockCosts(seconds=fast_last, joules=slow_last)
    expected = [(0, 1), (1, 2), (2, 5)] if rule == "latency" else [(0, 3), (3, 4), (4, 5)]
    assert allocate_blocks(5, 5, rule, costs) == expected
    assert allocate_blocks(5, 5, "balanced", costs) == allocate_blocks(5, 5, "balanced")


def test_cost_rule_without_costs_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match="allocation rule 'latency' weighs the cluster's modelled costs"):
        allocate_blocks(4, 4, "latency")
    with pytest.raises(ValueError, match=r"not \(middle devices 2, depth 4\)"):
        allocate_blocks(4, 4, "energy", BlockCosts(seconds=[[1.0] * 4], joules=[[1.0] * 4]))
