"""HFSL rounds on tiny synthetic clusters: what changes, what crosses which link."""

import pytest
import torch

from ecogen.config.params import HfslParams, PeftParams
from ecogen.data.prepared import UNLABELLED, Split
from ecogen.federated.hfsl import run_hfsl
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import state_bytes, tunable_state
from ecogen.split import Channel

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=2, heads=2, num_classes=3)


def _cluster(seed: int, n: int = 24, labelled: int = 8) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n,), generator=g)
    y[labelled:] = UNLABELLED
    return Split(x, y)


def test_one_round_trains_only_tunable_modules_and_counts_bytes() -> None:
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    tunable_before = tunable_state(model)
    cfg = HfslParams(clusters=2, devices_per_cluster=4, rounds=2, batch_size=8, confidence_threshold=0.0)
    channel = Channel()
    evaluated = []
    out = run_hfsl(
        model,
        [_cluster(1), _cluster(2)],
        cfg,
        lambda m: evaluated.append(1) or 0.5,
        "cpu",
        seed=0,
        channel=channel,
    )
    assert len(out.accuracy) == 2 and len(evaluated) == 2
    assert all(torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if not p.requires_grad)
    assert any(not torch.equal(v, tunable_before[k]) for k, v in tunable_state(model).items())
    tunable = state_bytes(tunable_before)
    for rnd in out.bytes_per_round:
        # every cluster receives and returns exactly the tunable modules, device by device
        assert rnd["edge_client/down"] == 2 * tunable
        assert rnd["edge_client/up"] == 2 * tunable
        assert rnd["d2d/forward"] > 0 and rnd["d2d/backward"] > 0
    assert out.block_ranges == [(0, 1), (1, 2)]


def test_supervised_only_when_everything_is_labelled() -> None:
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="head"), seed=0)
    cfg = HfslParams(clusters=1, rounds=1, batch_size=8, unlabelled_weight=0.0)
    out = run_hfsl(model, [_cluster(3, labelled=24)], cfg, lambda m: 0.0, "cpu", seed=0)
    # head-only: only the end device learns, so no gradient ever travels back
    assert "d2d/backward" not in out.bytes_per_round[0]


@pytest.mark.parametrize("mode", ["aligned", "adaptive"])
def test_every_pseudo_label_mode_trains_through_the_split_chain(mode: str) -> None:
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    before = tunable_state(model)
    # no labelled image: whatever trains, trains through the labeller's pseudo-labels (τ = 0: all pass)
    cfg = HfslParams(clusters=1, rounds=1, batch_size=4, pseudo_labels=mode, confidence_threshold=0.0)
    out = run_hfsl(model, [_cluster(4, labelled=0)], cfg, lambda m: 0.0, "cpu", seed=0)
    assert any(not torch.equal(v, before[k]) for k, v in tunable_state(model).items())
    assert out.bytes_per_round[0]["d2d/backward"] > 0
