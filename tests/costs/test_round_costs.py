"""The round cost model and the cost-aware allocation on heterogeneous clusters."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from ecogen.config.params import CostParams, Params
from ecogen.costs.round import block_ranges, round_costs
from ecogen.models.vit import ViT, ViTConfig, split_segments

VIT = ViT(ViTConfig())  # the default model section's ViT on 28×28×1 images


def _params(chain: list[str], **hfsl: object) -> Params:
    return Params.model_validate(
        {"hfsl": {"devices_per_cluster": len(chain), **hfsl}, "costs": {"cluster_devices": chain}}
    )


def test_latency_rule_cuts_balanced_round_latency_by_a_fifth_on_a_phone_board_weak_cluster() -> None:
    # balanced gives the extra block to the first middle device, here the weak one
    params = _params(["phone", "weak", "phone", "board", "phone"])
    balanced, latency = round_costs(params, VIT, "balanced"), round_costs(params, VIT, "latency")
    cut = 1 - latency.latency_s / balanced.latency_s
    print(f"balanced {balanced.latency_s:.3f} s, latency {latency.latency_s:.3f} s: {cut:.1%} lower")
    assert cut >= 0.20
    assert block_ranges(params, VIT, "latency") == [(0, 1), (1, 2), (2, 4)]  # the extra block to the board


def test_no_rule_beats_the_latency_rule_or_the_energy_rule_at_its_own_objective() -> None:
    for chain in (["phone", "phone", "board", "weak", "phone"], ["weak", "board", "weak", "phone", "board"]):
        params = _params(chain, unlabelled_weight=0.5)  # semi-supervised: more images cross the chain
        rounds = {r: round_costs(params, VIT, r) for r in ("balanced", "front", "latency", "energy")}
        assert min(c.latency_s for c in rounds.values()) == pytest.approx(rounds["latency"].latency_s)
        assert min(c.device_energy_j for c in rounds.values()) == pytest.approx(
            rounds["energy"].device_energy_j
        )


def test_round_figures_add_up() -> None:
    params = _params(["phone", "board", "weak", "phone"])
    c = round_costs(params, VIT)
    assert c.roles == ["start", "middle0", "middle1", "end"]
    assert c.classes == ["phone", "board", "weak", "phone"]
    assert c.latency_s == pytest.approx(sum(c.busy_s) + sum(link.seconds for link in c.links.values()))
    for name, busy, joules in zip(c.classes, c.busy_s, c.energy_j, strict=True):
        d = params.costs.devices[name]
        assert joules == pytest.approx(d.watts_busy * busy + d.watts_idle * (c.latency_s - busy))
    d2d = params.costs.links["d2d"]
    assert c.links["d2d"].joules == pytest.approx(c.links["d2d"].bytes * d2d.joules_per_byte)
    # 15 steps × 3 hops × (activation forward + gradient back) × 16 images × 50 tokens × 64 dims × 4 bytes
    assert c.links["d2d"].bytes == 15 * 3 * 2 * 16 * 50 * 64 * 4
    assert all(name.startswith("modelled_") for name in c.metrics())


def test_the_split_computes_the_same_logits_whatever_the_rule() -> None:
    """The allocation moves time and energy, never the accuracy: every chain is the same function."""
    params = _params(["phone", "weak", "phone", "board", "phone"])
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = VIT(x)
        for rule in ("balanced", "front", "latency", "energy"):
            h = x
            for segment in split_segments(VIT, block_ranges(params, VIT, rule)):
                h = segment(h)
            assert torch.equal(h, expected)


def test_unknown_device_class_and_too_many_devices_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match=r"unknown device classes \['toaster'\]; known .*phone, board"):
        CostParams(cluster_devices=["phone", "toaster", "phone"])
    with pytest.raises(ValidationError, match="lists 4 devices but hfsl.devices_per_cluster is 3"):
        Params.model_validate({"costs": {"cluster_devices": ["phone", "board", "weak", "phone"]}})
    with pytest.raises(ValidationError, match="costs.links must give exactly d2d, edge_client, cloud_edge"):
        CostParams(links={})
    with pytest.raises(ValidationError, match="greater than 0"):
        CostParams(
            devices={"phone": {"flops": 0, "watts_busy": 1, "watts_idle": 1}}, cluster_devices=["phone"] * 3
        )


def test_a_shorter_cluster_list_repeats_its_last_middle_class() -> None:
    assert CostParams().chain(5) == ["phone", "board", "board", "board", "phone"]


def test_a_run_without_a_fixed_step_count_is_allocated_but_has_no_modelled_round() -> None:
    params = _params(["phone", "weak", "phone", "board", "phone"], local_steps=None)
    assert block_ranges(params, VIT, "latency") == [(0, 1), (1, 2), (2, 4)]  # steps scale all alike
    with pytest.raises(ValueError, match="give hfsl.local_steps"):
        round_costs(params, VIT)
