"""Block allocation over the middle devices of a cluster."""

import pytest

from ecogen.split.allocation import allocate_blocks


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
