"""Meters that overlap (trials side by side) are each charged their share of the machine."""

from __future__ import annotations

import pytest

from ecogen.tracking.energy import SHARE_TAG, EnergyReading, Sharing


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_overlapping_meters_split_the_time_they_share() -> None:
    clock = _Clock()
    sharing = Sharing(clock)
    a = sharing.start()  # a alone for 5 s, then with b for 5 s, then alone for 2 s
    clock.now = 5.0
    b = sharing.start()
    clock.now = 10.0
    share_b = sharing.stop(b)
    clock.now = 12.0
    share_a = sharing.stop(a)
    assert share_b == pytest.approx(0.5)
    assert share_a == pytest.approx((5 + 2.5 + 2) / 12)
    # charged seconds add up to the wall time the machine ran
    assert share_a * 12 + share_b * 5 == pytest.approx(12)


def test_a_meter_alone_holds_the_whole_machine() -> None:
    clock = _Clock()
    sharing = Sharing(clock)
    t = sharing.start()
    clock.now = 3.0
    assert sharing.stop(t) == 1.0
    t = sharing.start()
    assert sharing.stop(t) == 1.0  # no time passed


def test_a_reading_scaled_to_its_share() -> None:
    reading = EnergyReading(
        energy_kwh=2.0, emissions_kg_co2eq=1.0, cpu_kwh=1.5, cpu_power_w=40.0, tags={"x": "y"}
    )
    assert reading.shared(1.0) is reading
    half = reading.shared(0.5)
    scaled = (half.energy_kwh, half.emissions_kg_co2eq, half.cpu_kwh, half.cpu_power_w)
    assert scaled == (1.0, 0.5, 0.75, 20.0)
    assert half.tags == {"x": "y", SHARE_TAG: "0.500"}
