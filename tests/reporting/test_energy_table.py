"""The report's energy per method (a Table 2 of our own) and its target, from literal numbers."""

from __future__ import annotations

import pytest

from ecogen.reporting import tables
from ecogen.reporting.energy import reach, reference_accuracy
from ecogen.reporting.summary import ECOGEN, FEDAVG_FULL, Trial, aggregate
from ecogen.reporting.targets import energy
from ecogen.stages.hfsl_metrics import END, MODELLED_DEVICE_J, MODELLED_LINK_J, MODELLED_TIME_S
from ecogen.stages.metric import EMISSIONS, ENERGY_KWH


def _rows(curves: dict[str, list[float]], joules: dict[str, float]):
    """One replicate per row: its accuracy per round 1…R, and its stage's modelled device joules
    (link joules a tenth of them, modelled time = joules seconds)."""
    trials = []
    for row, curve in curves.items():
        metrics = {END.name: curve[-1], ENERGY_KWH.name: 1e-3, EMISSIONS.name: 4e-4}
        if row in joules:
            metrics |= {
                MODELLED_DEVICE_J.name: joules[row],
                MODELLED_LINK_J.name: joules[row] / 10,
                MODELLED_TIME_S.name: joules[row],
            }
        trials.append(Trial(row, 0, metrics, accuracy=dict(enumerate(curve, start=1))))
    return aggregate(trials)


def test_reach_is_the_first_round_at_the_accuracy_and_the_share_of_the_stage_by_then() -> None:
    rows = _rows({FEDAVG_FULL: [0.80, 0.85, 0.90, 0.92], ECOGEN: [0.90, 0.92, 0.93, 0.94]}, {ECOGEN: 400.0})
    assert reference_accuracy(rows) == pytest.approx(0.92)
    got = reach(rows[ECOGEN], 0.92)
    assert (got.round, got.rounds) == (2, 4)
    assert got.joules == pytest.approx(440.0 / 2) and got.seconds == pytest.approx(200.0)
    never = reach(rows[ECOGEN], 0.99)
    assert never.round is None and never.joules == pytest.approx(440.0)  # the whole stage


def test_energy_target_passes_at_half_fedavg_full_or_less_to_reach_its_end_accuracy() -> None:
    # fedavg-full reaches 0.92 at its round 4 (1100 J); EcoGen at its round 2 of 4: 440 J / 2
    rows = _rows(
        {FEDAVG_FULL: [0.80, 0.85, 0.90, 0.92], ECOGEN: [0.90, 0.92, 0.93, 0.94]},
        {ECOGEN: 400.0, FEDAVG_FULL: 1000.0},
    )
    check = energy(rows)
    assert check.status == "PASS" and check.value == pytest.approx(220.0 / 1100.0)
    assert check.measured == "220 J (round 2) vs 1100 J (round 4) to reach 0.920: 0.20×"


def test_energy_target_misses_with_the_ratio_at_ecogens_end_when_it_never_reaches() -> None:
    rows = _rows({FEDAVG_FULL: [0.80, 0.92], ECOGEN: [0.85, 0.91]}, {ECOGEN: 300.0, FEDAVG_FULL: 1000.0})
    check = energy(rows)
    assert check.status == "MISS" and check.value == pytest.approx(0.3)
    # and why: to EcoGen's own end (0.91) fedavg-full needs its round 2 (1100 J with links)
    assert check.measured == (
        "EcoGen never reached 0.920 in 2 rounds; at its end 0.30×;"
        " to EcoGen's end 0.910: 330 J (round 2) vs 1100 J (round 2), 0.30×"
    )
    costly = energy(_rows({FEDAVG_FULL: [0.9], ECOGEN: [0.95]}, {ECOGEN: 600.0, FEDAVG_FULL: 1000.0}))
    assert costly.status == "MISS" and costly.value == pytest.approx(0.6)


def test_energy_target_is_not_run_without_both_rows_modelled_figures() -> None:
    assert energy(None).status == "not run"
    assert energy(_rows({FEDAVG_FULL: [0.9], ECOGEN: [0.95]}, {ECOGEN: 1.0})).status == "not run"


def test_energy_section_keeps_modelled_and_host_figures_apart_and_sets_the_paper_beside() -> None:
    rows = _rows(
        {FEDAVG_FULL: [0.80, 0.92], ECOGEN: [0.93, 0.94], "local": [0.5, 0.6]},
        {ECOGEN: 400.0, FEDAVG_FULL: 1000.0},
    )
    md = tables.energy_markdown(rows)
    section = tables.section(md, "Energy per method (baselines)")
    assert "Host energy (kWh, CodeCarbon)" in section and "Modelled device (J)" in section

    def cells(first: str) -> list[str]:
        line = next(x for x in section.splitlines() if x.startswith(f"| {first} |"))
        return [c.strip() for c in line.strip().strip("|").split("|")]

    assert cells(ECOGEN) == [ECOGEN, "400 ± —", "40 ± —", "0.001 ± —", "0.0004 ± —", "1", "220", "3 min 20 s"]
    assert cells(FEDAVG_FULL)[5:] == ["2", "1100", "16 min 40 s"]
    assert cells("local")[1:3] == ["—", "—"] and cells("local")[5] == "not reached (2 rounds)"
    assert cells("splitfed")[1] == "not run"
    assert "| Proposed model (EcoGen) | Text-Image | V100 GPU × 2 | 400 | 97 | 29.2 | 38.8 |" in section
    assert "the text states 35.2 kWh" in section
