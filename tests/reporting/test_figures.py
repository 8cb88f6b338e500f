"""Every figure is written, with data and with nothing run."""

from __future__ import annotations

from pathlib import Path

from ecogen.reporting import figures
from ecogen.reporting.summary import (
    CENTRALIZED,
    ECOGEN,
    Trial,
    aggregate,
)
from ecogen.stages.hfsl_metrics import EDGE_CLIENT_BYTES, END, FIRST
from ecogen.stages.metric import ENERGY_KWH

PNG = b"\x89PNG"


def test_figures_with_data_and_without(tmp_path: Path) -> None:
    base = aggregate(
        Trial(
            row,
            k,
            {END.name: 0.9, EDGE_CLIENT_BYTES.name: 1e6 * (k + 1), ENERGY_KWH.name: 1e-4},
            {},
            {0: 0.1, 1: 0.5, 2: 0.9},
        )
        for row in (ECOGEN, CENTRALIZED)
        for k in (0, 1)
    )
    t3 = aggregate(Trial(f"c{c}", 0, {FIRST.name: 0.9, END.name: 0.95}) for c in (1, 2, 3))
    written = figures.write_figures(t3, base, tmp_path / "with")
    empty = figures.write_figures(None, None, tmp_path / "without")
    assert (
        [p.name for p in written]
        == [p.name for p in empty]
        == [
            "accuracy_per_round.png",
            "table3.png",
            "bytes_per_round.png",
            "energy.png",
            "relay_cycles.png",
        ]
    )
    for path in [*written, *empty]:
        assert path.read_bytes()[:4] == PNG
