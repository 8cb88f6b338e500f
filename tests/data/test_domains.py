"""Domain transforms: deterministic, shape- and dtype-preserving, and exact where they can be."""

from __future__ import annotations

import pytest
import torch

from ecogen.config.params import DOMAIN_NAMES
from ecogen.data.domains import DOMAINS, apply_domain
from ecogen.data.seeding import derive_seed


def _batch() -> torch.Tensor:
    return torch.randint(0, 256, (4, 1, 6, 6), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_registry_matches_params():
    assert set(DOMAINS) == set(DOMAIN_NAMES)


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_deterministic_and_shape_preserving(name):
    x = _batch()
    before = x.clone()
    a, b = apply_domain(name, x, seed=3), apply_domain(name, x, seed=3)
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert torch.equal(x, before)  # input untouched


def test_exact_transforms():
    x = torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8).view(1, 1, 2, 2)
    assert apply_domain("rotate90", x, 0).view(2, 2).tolist() == [[2, 4], [1, 3]]
    assert apply_domain("invert", x, 0).view(2, 2).tolist() == [[254, 253], [252, 251]]
    assert apply_domain("flip", x, 0).view(2, 2).tolist() == [[2, 1], [4, 3]]
    assert torch.equal(apply_domain("identity", x, 0), x)
    assert torch.equal(apply_domain("rotate90", apply_domain("rotate90", x, 0), 0), x.flip(-1).flip(-2))


def test_blur_keeps_flat_images_and_smooths_edges():
    flat = torch.full((1, 1, 5, 5), 77, dtype=torch.uint8)
    assert torch.equal(apply_domain("blur", flat, 0), flat)
    spike = torch.zeros((1, 1, 5, 5), dtype=torch.uint8)
    spike[..., 2, 2] = 160
    out = apply_domain("blur", spike, 0)
    assert int(out[..., 2, 2]) == 40 and int(out[..., 1, 2]) == 20 and int(out[..., 1, 1]) == 10


def test_noise_depends_on_seed_and_stays_in_range():
    x = _batch()
    a, b = apply_domain("noise", x, seed=1), apply_domain("noise", x, seed=2)
    assert not torch.equal(a, b) and not torch.equal(a, x)
    assert (a.int() - x.int()).abs().float().mean() < 40


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown domain"):
        apply_domain("sepia", _batch(), 0)
    with pytest.raises(ValueError, match="uint8"):
        apply_domain("invert", _batch().float(), 0)


def test_derive_seed_is_stable_and_separates_streams():
    assert derive_seed(0, "domain", 1, "test") == derive_seed(0, "domain", 1, "test")
    seeds = {
        derive_seed(s, "domain", d, split) for s in (0, 1, -1) for d in (0, 1) for split in ("test", "edge")
    }
    assert len(seeds) == 12
