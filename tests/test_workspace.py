"""Where a trial's and a cycle's files live."""

from __future__ import annotations

from pathlib import Path

from ecogen.workspace import Workspace


def test_plain_trial_and_cycle_layouts() -> None:
    root = Path("/p")
    plain = Workspace(root)
    assert plain.fm == root / "artifacts/fm.pt" and plain.warm_start("a") is None
    assert plain.hfsl("a") == root / "artifacts/hfsl/a" and plain.metrics == root / "metrics"
    trial = Workspace(root, trial="c3-r1")
    assert trial.edge("a") == plain.edge("a") and trial.fm == plain.fm  # shared inputs
    assert trial.hfsl("a") == root / "artifacts/trials/c3-r1/hfsl/a"
    assert trial.metrics == root / "metrics/trials/c3-r1"


def test_each_cycle_starts_from_the_previous_relay_and_modules() -> None:
    root = Path("/p")
    first, second = Workspace(root, cycle=0), Workspace(root, cycle=1)
    assert first.fm == root / "artifacts/fm.pt" and first.warm_start("a") is None
    assert first.edge("a") == root / "artifacts/cycles/0/edges/a"
    assert first.relay == root / "artifacts/cycles/0/relay"
    assert second.fm == first.relay / "fm.pt"
    assert second.warm_start("a") == first.hfsl("a") / "tunable.pt"
    assert second.metrics == root / "metrics/cycles/1"
