"""The drift score: about 0.5 for images like the reference, near 1 for a shifted stream."""

from __future__ import annotations

import pytest
import torch

from ecogen.config.params import DataParams
from ecogen.data.domains import apply_domain
from ecogen.data.seeding import derive_seed
from ecogen.data.sources import load_source
from ecogen.models.vit import ViT, ViTConfig
from ecogen.stream.drift import drift_score, sample


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    source = load_source(DataParams(source="digits"), seed=derive_seed(0, "source"))
    return source.train.x[:600]


@pytest.fixture(scope="module")
def encoder() -> ViT:
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=8, channels=1, patch_size=2, num_classes=10, dim=16, depth=1, heads=2)
    return ViT(cfg).eval()


def test_same_distribution_scores_near_chance(images, encoder):
    score = drift_score(encoder, images[:300], images[300:], seed=0)
    assert 0.35 < score < 0.65


def test_a_shift_scores_high(images, encoder):
    rotated = apply_domain("rotate90", images[300:], 0)
    assert drift_score(encoder, images[:300], rotated, seed=0) > 0.9


def test_sample_draws_at_most_n_rows():
    x = torch.arange(10)
    assert len(sample(x, 4, seed=1)) == 4 and sample(x, 20, seed=1) is x
    assert torch.equal(sample(x, 4, seed=1), sample(x, 4, seed=1))
