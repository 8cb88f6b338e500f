"""export_raw_images: every edge model kind and the FM's features, from raw uint8 images, as the
in-process module computes them from floats in [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecogen.config.params import PeftParams
from ecogen.data.prepared import to_float
from ecogen.models.export import PooledFeatures, export_raw_images
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.peft.registry import PEFT_METHODS

CFG = ViTConfig(dim=16, depth=2, heads=2)


def raw(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("method", sorted(PEFT_METHODS))
def test_edge_models_export_to_probabilities(method: str) -> None:
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method=method), seed=1)
    with torch.no_grad():  # tunables away from their initial values (LoRA's B starts at zero)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    program = export_raw_images(model, "probabilities", raw(1, 0)).module()
    x = raw(5, 1)  # another batch size than the example's
    with torch.no_grad():
        want = model.eval()(to_float(torch.from_numpy(x))).softmax(-1)
        got = program(torch.from_numpy(x))
    torch.testing.assert_close(got, want)
    after = model.state_dict()  # exported from a copy: LoRA is not merged into the model itself
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())


def test_fm_exports_to_pooled_features() -> None:
    torch.manual_seed(0)
    fm = PooledFeatures(ViT(CFG))
    x = raw(3, 2)
    got = export_raw_images(fm, "features", raw(2, 0)).module()(torch.from_numpy(x))
    with torch.no_grad():
        want = fm.eval()(to_float(torch.from_numpy(x)))
    assert got.shape == (3, CFG.dim)
    torch.testing.assert_close(got, want)


def test_only_raw_images_are_an_example() -> None:
    with pytest.raises(ValueError, match="raw uint8 images"):
        export_raw_images(nn.Identity(), "features", raw(2, 0).astype(np.float32))
