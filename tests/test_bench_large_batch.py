"""benchmarks/large_batch.py on tiny data: every rule pre-trains and fine-tunes at its stated rate."""

from __future__ import annotations

import pytest

from benchmarks.large_batch import main


def test_large_batch_benchmark_runs_each_rule_through_the_stages() -> None:
    result = main(["--tiny", "--seeds", "0"])["settings"]
    rates = {name: s["pretrain"]["lr"] for name, s in result.items()}
    base = rates["batch 128"]
    assert rates["batch 512, lr as tuned"] == pytest.approx(base)
    assert rates["batch 512, sqrt rule"] == pytest.approx(2 * base)
    assert rates["batch 512, linear rule"] == pytest.approx(4 * base)
    assert result["batch 512, sqrt rule, 3× epochs"]["pretrain"]["epochs"] == 3
    for setting in result.values():
        assert setting["mae_loss"]["mean"] > 0 and 0 <= setting["accuracy"]["mean"] <= 1
