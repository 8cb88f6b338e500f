"""Evaluation runs a merged copy of a LoRA model: the same outputs, the trained model untouched."""

import pytest
import torch

from ecogen.config.params import PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.peft.inference import for_inference

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=2, heads=2, num_classes=4)


def _tuned(method: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method=method, lora_rank=2), seed=0)
    with torch.no_grad():  # LoRA B starts at zero: give the adapters something to add
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def test_a_lora_model_is_evaluated_merged_with_the_same_outputs() -> None:
    model = _tuned("lora")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    merged = for_inference(model)
    x = torch.randn(5, 1, 8, 8)
    assert merged is not model
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(merged(x), model(x), atol=1e-5)
    after = dict(model.named_parameters())
    assert before.keys() == after.keys()  # the trained model keeps its adapters and values
    assert all(torch.equal(before[n], after[n]) for n in before)


@pytest.mark.parametrize("method", ["prompt", "head"])
def test_other_models_are_evaluated_as_they_are(method: str) -> None:
    model = _tuned(method)
    assert for_inference(model) is model
