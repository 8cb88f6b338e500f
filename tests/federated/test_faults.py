"""Faults and defences: dropout and stragglers, robust aggregation, DP uploads with an accountant."""

from __future__ import annotations

import pytest
import torch
from federated_support import CFG, cluster

from ecogen.config.params import HfslParams, PeftParams
from ecogen.federated import faults, privacy
from ecogen.federated.aggregate import (
    aggregate,
    clip_update,
    coordinate_median,
    trimmed_mean,
    update_norm,
    weighted_median,
    weighted_trimmed_mean,
)
from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model


def _states(*values: float) -> list[dict[str, torch.Tensor]]:
    return [{"w": torch.full((2,), v)} for v in values]


def test_robust_rules_ignore_one_wild_value_and_fedavg_does_not() -> None:
    states = _states(1.0, 1.2, 0.8, 100.0)
    start = {"w": torch.zeros(2)}
    assert coordinate_median(states)["w"].tolist() == pytest.approx([1.1, 1.1])
    assert trimmed_mean(states, 0.25)["w"].tolist() == pytest.approx([1.1, 1.1])
    clipped = aggregate([(s, 1) for s in states], start, "norm_clip", clip=2.0)["w"]
    assert clipped.norm() <= 2.0 + 1e-6
    assert aggregate([(s, 1) for s in states], start, "fedavg")["w"][0] == pytest.approx(25.75)
    assert update_norm(clip_update(states[3], start, 1.0), start) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="leaves nothing"):
        trimmed_mean(_states(1.0, 2.0), 0.49 + 0.01)


def test_dropout_and_stragglers_are_seeded_at_their_rates() -> None:
    cfg = HfslParams(device_dropout=0.3, straggler_rate=0.2, dropout_policy="sit_out")
    rounds = [faults.present(7, r, [3] * 50 + [0], cfg) for r in range(40)]
    assert rounds[0] == faults.present(7, 0, [3] * 50 + [0], cfg)  # seeded
    assert all(r[-1] for r in rounds)  # the edge's own participant never drops out
    rate = sum(sum(r[:50]) for r in rounds) / (50 * 40)
    assert rate == pytest.approx(0.7**3, abs=0.03)  # a cluster needs all 3 devices
    late = sum(sum(faults.late(7, r, 50, cfg)) for r in range(40)) / 2000
    assert late == pytest.approx(0.2, abs=0.03)


def test_hand_over_keeps_a_cluster_in_while_one_device_is_online() -> None:
    cfg = HfslParams(device_dropout=0.3, dropout_policy="hand_over")
    assert faults.hosts([True, False, True]) == [0, 0, 2]  # the one before it, on a tie
    assert faults.hosts([False, False, True]) == [2, 2, 2]
    assert faults.hosts([True, True, False]) == [0, 1, 1]
    with pytest.raises(ValueError, match="no device"):
        faults.hosts([False, False, False])
    rounds = [faults.present(7, r, [3] * 50 + [0], cfg) for r in range(40)]
    rate = sum(sum(r[:50]) for r in rounds) / (50 * 40)
    assert rate == pytest.approx(1 - 0.3**3, abs=0.02)  # out only when all 3 devices are
    # the same draws as sit_out: a cluster present there is present here
    waits = HfslParams(device_dropout=0.3, dropout_policy="sit_out")
    sit_out = [faults.present(7, r, [3] * 50, waits) for r in range(40)]
    for s, h in zip(sit_out, rounds, strict=True):
        assert all(not a or b for a, b in zip(s, h[:50], strict=True))


def test_dp_noise_meets_the_target_epsilon_by_the_accountant() -> None:
    sigma = privacy.noise_multiplier(8.0, 16, 1e-5)
    assert privacy.epsilon(sigma, 16, 1e-5) <= 8.0 < privacy.epsilon(sigma * 0.99, 16, 1e-5)
    start = {"w": torch.zeros(1000)}
    noisy = privacy.privatize(
        {"w": torch.full((1000,), 5.0)}, start, 1.0, sigma, torch.Generator().manual_seed(0)
    )
    assert noisy["w"].std().item() == pytest.approx(sigma, rel=0.1)  # N(0, (σC)²) on a clipped update


def _run(**levers: object):
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    cfg = HfslParams(
        **{"clusters": 4, "rounds": 3, "batch_size": 4, "local_steps": 2, "unlabelled_weight": 0.0, **levers}
    )
    job = EdgeJob("e", model, [cluster(s, 16) for s in range(4)], lambda m: 0.0, 0, own=cluster(9, 16))
    return run_hfsl_edges([job], cfg, "cpu")["e"]


def test_a_run_with_dropout_completes_over_the_survivors() -> None:
    clean, dropped = _run(), _run(device_dropout=0.5, dropout_policy="sit_out")
    assert clean.per_round("aggregated") == [4, 4, 4]
    assert len(dropped.accuracy) == 3 and min(dropped.per_round("aggregated")) < 4
    # offline clusters neither receive nor send: fewer edge↔client bytes
    assert sum(r.get("edge_client/down", 0) for r in dropped.bytes_per_round) < sum(
        r["edge_client/down"] for r in clean.bytes_per_round
    )


def test_handed_over_segments_keep_clusters_training_and_are_paid_for_in_bytes() -> None:
    clean = _run()
    sat_out = _run(device_dropout=0.5, dropout_policy="sit_out")
    handed = _run(device_dropout=0.5, dropout_policy="hand_over")
    assert sum(handed.per_round("aggregated")) > sum(sat_out.per_round("aggregated"))
    assert (
        sum(handed.per_round("handed_over")) > 0
        and sum(sat_out.per_round("handed_over")) == sum(clean.per_round("handed_over")) == 0
    )

    def total(out, key: str) -> int:
        return sum(r.get(key, 0) for r in out.bytes_per_round)

    if sum(handed.per_round("aggregated")) == sum(clean.per_round("aggregated")):  # every cluster trained:
        # a stand-in device gets its segment's frozen weights, and the link inside it carries nothing
        assert total(handed, "edge_client/down") > total(clean, "edge_client/down")
        assert total(handed, "d2d/forward") < total(clean, "d2d/forward")


def test_a_sign_flipping_cluster_moves_fedavg_far_and_the_median_little() -> None:
    clean = _run()
    flip = {"attack": "sign_flip", "attackers": 1, "attack_scale": 20.0}
    plain, median = _run(**flip), _run(**flip, aggregation="median")

    def gap(out) -> float:
        return max((out.state[k] - clean.state[k]).abs().max().item() for k in clean.state)

    assert gap(median) < gap(plain) / 3


def test_faults_are_validated() -> None:
    with pytest.raises(ValueError, match="aggregates none"):
        HfslParams(method="local", device_dropout=0.3)
    with pytest.raises(ValueError, match="together"):
        HfslParams(attack="scale")
    with pytest.raises(ValueError, match="exceeds clusters"):
        HfslParams(attack="scale", attackers=4, clusters=3)


def test_weighted_rules_count_examples_and_equal_weights_give_the_plain_rules() -> None:
    states = _states(1.0, 2.0, 3.0, 50.0)
    equal = [(s, 1) for s in states]
    assert weighted_median(equal)["w"].tolist() == coordinate_median(states)["w"].tolist() == [2.5, 2.5]
    assert weighted_trimmed_mean(equal, 0.25)["w"].tolist() == trimmed_mean(states, 0.25)["w"].tolist()
    # the first state holds 6 of 9 examples: the median is its value, the wild one stays out
    weighted = [(s, n) for s, n in zip(states, (6, 1, 1, 1), strict=True)]
    assert weighted_median(weighted)["w"].tolist() == [1.0, 1.0]
    # trimming 1/9 of the weight from each end: 5 of the first state's 6, one each of 2.0 and 3.0
    assert weighted_trimmed_mean(weighted, 1 / 9)["w"][0].item() == pytest.approx((5 * 1.0 + 2.0 + 3.0) / 7)
    # through the rule: weighted by examples unless told otherwise
    start = {"w": torch.zeros(2)}
    assert aggregate(weighted, start, "median")["w"][0] == 1.0
    assert aggregate(weighted, start, "median", weighted=False)["w"][0] == 2.5
    # per coordinate, and the dtype kept
    mixed = [({"w": torch.tensor([1.0, 9.0])}, 3), ({"w": torch.tensor([5.0, 0.0])}, 1)]
    assert weighted_median(mixed)["w"].tolist() == [1.0, 9.0]
    with pytest.raises(ValueError, match="positive example count"):
        weighted_median([(states[0], 0)])
