"""PEFT registry: the tunable modules are what each method promises, and nothing else trains."""

import pytest
import torch

from ecogen.config.params import PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import base_vit, build_edge_model
from ecogen.peft.registry import PEFT_METHODS, apply_peft
from ecogen.peft.tunable import load_tunable_state, state_bytes, tunable_state

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=2, heads=2, num_classes=4)


def test_lora_targets_projections_and_trains_the_head() -> None:
    model = apply_peft(ViT(CFG), PeftParams(method="lora", lora_rank=2, target_modules=["qkv", "fc2"]))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("qkv.lora_A" in n for n in names) and any("fc2.lora_B" in n for n in names)
    assert not any("proj.lora" in n for n in names)
    assert any("head" in n for n in names)
    assert not any("embedding" in n for n in names)


def test_prompt_tuning_adds_per_block_prompts_and_keeps_token_count() -> None:
    vit = ViT(CFG)
    model = apply_peft(vit, PeftParams(method="prompt", prompt_tokens=3))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sum(n.endswith("prompts") for n in names) == CFG.depth
    h = vit.blocks[0](vit.embedding(torch.randn(2, 1, 8, 8)))
    assert h.shape == (2, 1 + CFG.num_patches, CFG.dim)


@pytest.mark.parametrize("method", sorted(PEFT_METHODS))
def test_training_changes_only_tunable_modules(method: str) -> None:
    fm = MaskedAutoencoder(ViT(CFG))
    model = build_edge_model(fm, PeftParams(method=method, lora_rank=2), seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    tunable = set(tunable_state(model))
    assert changed and changed <= tunable
    assert isinstance(base_vit(model), ViT)


def test_tunable_state_round_trip_and_mismatch() -> None:
    a = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=1)
    b = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=2)
    state = tunable_state(a)
    assert state_bytes(state) == sum(v.numel() * 4 for v in state.values())
    load_tunable_state(b, state)
    assert all(torch.equal(state[k], v) for k, v in tunable_state(b).items())
    with pytest.raises(KeyError):
        load_tunable_state(b, {"nope": torch.zeros(1)})


def test_same_seed_same_adapter_init() -> None:
    fm = MaskedAutoencoder(ViT(CFG))
    a = tunable_state(build_edge_model(fm, PeftParams(method="prompt"), seed=3))
    b = tunable_state(build_edge_model(fm, PeftParams(method="prompt"), seed=3))
    assert all(torch.equal(a[k], b[k]) for k in a)
