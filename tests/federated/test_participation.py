"""Many clusters per edge, few a round (``hfsl.clusters_per_round``): seeded draws, only the drawn
clusters read and trained, FedAvg over them, bytes that follow them, faults among them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from federated_support import CFG, cluster
from torch import Tensor

from ecogen.config.params import HfslParams, PeftParams
from ecogen.data.prepared import Split
from ecogen.federated.hfsl import EdgeJob, HfslOutcome, run_hfsl_edges
from ecogen.federated.participation import drawn, samples
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import state_bytes, tunable_state

SEED = 4


class Counted:
    """A cluster's data that logs every read of its images (and refuses to have its labels read)."""

    def __init__(self, number: int, split: Split, reads: list[int]) -> None:
        self.number, self.split, self.reads = number, split, reads

    def __len__(self) -> int:
        return len(self.split)

    def load(self) -> Split:
        self.reads.append(self.number)
        return self.split

    def labels(self) -> Tensor:
        raise AssertionError("the round loop reads no cluster's labels")


def _model():
    torch.manual_seed(0)
    return build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)


def _clusters(n: int, labelled: int | None = None) -> list[Split]:
    # unequal labelled counts unless asked, so FedAvg's weights matter
    return [cluster(100 + k, 16, 4 + k % 5 if labelled is None else labelled) for k in range(n)]


def _run(
    n: int,
    own: bool = True,
    workers: int | None = None,
    checkpoint: Path | None = None,
    evaluate=None,
    labelled: int | None = None,
    **levers,
) -> HfslOutcome:
    cfg = HfslParams(
        **{"clusters": n, "rounds": 1, "batch_size": 4, "local_steps": 2, "unlabelled_weight": 0.0, **levers}
    )
    own_set = cluster(9, 12, 12) if own else None
    job = EdgeJob("e", _model(), _clusters(n, labelled), evaluate or (lambda m: 0.5), SEED, own=own_set)
    return run_hfsl_edges([job], cfg, "cpu", workers=workers, checkpoint=checkpoint)["e"]


def test_draws_are_seeded_within_bounds_and_new_every_round() -> None:
    cfg = HfslParams(clusters=1000, clusters_per_round=10)
    first = drawn(7, 3, 1000, cfg)
    assert first == drawn(7, 3, 1000, cfg)  # same seed, same round: same clusters
    assert len(first) == len(set(first)) == 10 and first == sorted(first)
    assert all(0 <= k < 1000 for k in first)
    assert drawn(7, 4, 1000, cfg) != first and drawn(8, 3, 1000, cfg) != first
    # uniform over the population: 500 rounds of 5 of 50 draw each cluster ~50 times
    small = HfslParams(clusters=50, clusters_per_round=5)
    times = Counter(k for r in range(500) for k in drawn(1, r, 50, small))
    assert set(times) == set(range(50)) and 20 < min(times.values()) <= max(times.values()) < 90
    # every cluster, every round: no draw
    assert drawn(7, 3, 3, HfslParams(clusters=3)) == [0, 1, 2]
    assert not samples(HfslParams(clusters=3, clusters_per_round=3), 3)
    assert samples(HfslParams(clusters=3, clusters_per_round=2), 3)


def test_only_the_drawn_clusters_are_read_and_trained() -> None:
    reads: list[int] = []
    n, cfg = 12, HfslParams(clusters=12, clusters_per_round=3)
    sources = [Counted(k, s, reads) for k, s in enumerate(_clusters(n))]
    levers: dict[str, Any] = {"rounds": 3, "batch_size": 4, "local_steps": 2, "unlabelled_weight": 0.0}
    job = EdgeJob("e", _model(), sources, lambda m: 0.5, SEED, own=cluster(9, 12, 12))
    out = run_hfsl_edges([job], cfg.model_copy(update=levers), "cpu")["e"]
    expected = [k for r in range(3) for k in drawn(SEED, r, n, cfg)]
    assert reads == expected  # each drawn cluster read once in its round, no other cluster ever
    assert len(set(range(n)) - set(reads)) >= 3
    assert out.per_round("trained") == out.per_round("aggregated") == [3, 3, 3]
    assert out.per_round("steps") == [(3 + 1) * 2] * 3  # three clusters and the edge's own, 2 steps each


def test_a_drawn_round_is_fedavg_over_the_drawn_clusters_only() -> None:
    n = 6
    # every cluster trained alone from the edge's modules (local: no aggregation), one round
    alone = _run(n, own=False, workers=1, method="local", driver="serial")
    trained = [tunable_state(m) for m in alone.cluster_models]
    sampled = _run(n, own=False, workers=1, clusters_per_round=2, driver="serial")
    chosen = drawn(SEED, 0, n, HfslParams(clusters=n, clusters_per_round=2))
    labelled = [int(c.labelled.sum()) for c in _clusters(n)]  # FedAvg's n_k (fedavg_weights: labelled)

    def fedavg(over: list[int], key: str) -> Tensor:
        total = torch.stack([labelled[k] * trained[k][key] for k in over]).sum(0)
        return total / sum(labelled[k] for k in over)

    for key, value in sampled.state.items():
        assert torch.allclose(value, fedavg(chosen, key), rtol=0, atol=1e-6), key
    assert any(not torch.allclose(v, fedavg(list(range(n)), k), atol=1e-6) for k, v in sampled.state.items())


def test_every_cluster_a_round_is_the_run_without_drawing() -> None:
    plain, all_drawn = _run(4, rounds=2), _run(4, rounds=2, clusters_per_round=4)
    assert all(torch.equal(plain.state[k], all_drawn.state[k]) for k in plain.state)
    assert plain.bytes_per_round == all_drawn.bytes_per_round
    assert plain.per_round("trained") == [4, 4]


def test_bytes_follow_the_clusters_drawn() -> None:
    tunable = state_bytes(tunable_state(_model()))
    # clusters alike, so each sends the same activations
    two, five = _run(8, labelled=8, clusters_per_round=2), _run(8, labelled=8, clusters_per_round=5)
    for m, out in ((2, two), (5, five)):
        # the edge's own participant is the edge: nothing crosses a link for it
        assert out.bytes_per_round[0]["edge_client/down"] == m * tunable
        assert out.bytes_per_round[0]["edge_client/up"] == m * tunable
    assert 2 * five.bytes_per_round[0]["d2d/forward"] == 5 * two.bytes_per_round[0]["d2d/forward"]


def test_faults_strike_among_the_drawn_clusters() -> None:
    tunable = state_bytes(tunable_state(_model()))
    out = _run(10, rounds=4, clusters_per_round=4, device_dropout=0.5, dropout_policy="sit_out")
    assert all(t <= 4 for t in out.per_round("trained")) and min(out.per_round("trained")) < 4
    # an offline cluster receives nothing: the bytes follow the clusters that trained
    downs = [r.get("edge_client/down", 0) for r in out.bytes_per_round]
    assert downs == [t * tunable for t in out.per_round("trained")]
    late = _run(10, rounds=4, clusters_per_round=4, straggler_rate=0.5)
    assert late.per_round("trained") == [4] * 4 and min(late.per_round("aggregated")) < 4


def test_edges_that_draw_still_meet_at_the_cloud() -> None:
    cfg = HfslParams(clusters=6, clusters_per_round=2, rounds=2, batch_size=4, local_steps=2, cloud_every=1)
    jobs = [
        EdgeJob(name, _model(), _clusters(6), lambda m: 0.5, seed, own=cluster(9, 12, 12))
        for name, seed in (("a", 1), ("b", 2))
    ]
    out = run_hfsl_edges(jobs, cfg, "cpu")
    assert all(torch.equal(out["a"].state[k], out["b"].state[k]) for k in out["a"].state)
    assert out["a"].per_round("trained") == out["b"].per_round("trained") == [2, 2]


class Stop(Exception):
    pass


def test_a_drawing_run_stopped_after_round_two_resumes(tmp_path: Path) -> None:
    levers: dict[str, Any] = {"rounds": 4, "clusters_per_round": 2}
    whole = _run(6, **levers)
    calls: list[int] = []

    def stop_in_round_three(model) -> float:
        calls.append(1)
        if len(calls) > 2:
            raise Stop
        return 0.5

    ckpt = tmp_path / ".rounds.pt"
    with pytest.raises(Stop):
        _run(6, checkpoint=ckpt, evaluate=stop_in_round_three, **levers)
    resumed = _run(6, checkpoint=ckpt, **levers)
    assert not ckpt.exists()
    assert resumed.bytes_per_round == whole.bytes_per_round
    assert resumed.per_round("trained") == whole.per_round("trained") == [2] * 4
    assert max((resumed.state[k] - whole.state[k]).abs().max().item() for k in whole.state) <= 1e-6


def test_clusters_per_round_is_validated() -> None:
    with pytest.raises(ValueError, match=r"clusters_per_round \(4\) exceeds clusters \(3\)"):
        HfslParams(clusters=3, clusters_per_round=4)
    with pytest.raises(ValueError, match="greater than 0"):
        HfslParams(clusters_per_round=0)
    for method in ("local", "pooled_labels", "centralized"):
        with pytest.raises(ValueError, match=rf"clusters_per_round \(2 of 5\).*method {method}"):
            HfslParams(method=method, clusters=5, clusters_per_round=2)
        HfslParams(method=method, clusters=5, clusters_per_round=5)  # every cluster: nothing drawn
    HfslParams(method="fedavg_full", clusters=1000, clusters_per_round=10)
