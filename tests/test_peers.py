"""benchmarks/peers: the shared job's helpers (the two sides themselves run as a benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from benchmarks.peers.ceiling import _rate, floor_s
from benchmarks.peers.job import CLIENTS, HFSL, PER_CLIENT, RssSampler, initial_model, state_bytes, summary
from ecogen.peft.tunable import tunable_state


def test_the_job_is_the_one_the_issue_states() -> None:
    assert (CLIENTS, PER_CLIENT, HFSL.rounds, HFSL.batch_size, HFSL.lr) == (6, 2000, 5, 64, 3e-3)
    assert HFSL.local_steps is None and HFSL.local_epochs == 1 and HFSL.unlabelled_weight == 0
    state = tunable_state(initial_model())
    assert any("proj.lora_B" in k for k in state) and any("fc2.lora_A" in k for k in state)
    assert not any("qkv" in k for k in state) and any(k.startswith("head") or ".head." in k for k in state)
    assert state_bytes(state) == sum(t.numel() * 4 for t in state.values())


def test_summary_takes_the_median_of_rounds_two_to_five() -> None:
    out = summary("x", [0.0, 10.0, 12.0, 15.0, 16.0, 18.0], [0.5] * 5, [100] * 5, 7)
    assert out["s_per_round"] == [10.0, 2.0, 3.0, 1.0, 2.0]
    assert out["s_per_round_median_2_5"] == 2.0


def test_rss_sampler_counts_child_processes() -> None:
    with RssSampler(every=0.05) as alone:
        time.sleep(0.2)
    child = subprocess.Popen(
        [sys.executable, "-c", "b = b'x' * (200 * 2**20); import time; time.sleep(2)"], env=dict(os.environ)
    )
    try:
        time.sleep(1.0)
        with RssSampler(every=0.05) as both:
            time.sleep(0.3)
    finally:
        child.kill()
    assert both.peak > alone.peak + 150 * 2**20


def test_flower_side_imports_when_the_extra_is_installed() -> None:
    pytest.importorskip("flwr")
    from benchmarks.peers import flower_side

    assert flower_side.client_app is not None


def test_the_floor_takes_the_best_rate_of_each_kind() -> None:
    train = {"eager": 500.0, "compiled": 1000.0, "bf16": 400.0}
    infer = {"batch_1024": 2000.0, "batch_64": 4000.0, "batch_32": 3000.0}
    assert floor_s(train, infer, 12000, 10000) == pytest.approx(12.0 + 2.5)


def test_rate_counts_images_per_second_after_the_warm_up() -> None:
    calls: list[float] = []

    def run() -> None:  # the first three calls are slow (compilation), the rest ~0.01 s
        calls.append(time.perf_counter())
        time.sleep(0.3 if len(calls) <= 3 else 0.01)

    rate = _rate(run, images=10, seconds=0.1)
    assert len(calls) >= 3 + 5
    # 10 images a call: ~1,000/s at most (sleep overshoots); counting a slow call would give < 250
    assert 400 < rate < 1000
