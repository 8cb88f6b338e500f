"""FixMatch views: seeded, shape-preserving, in range."""

import torch

from ecogen.training.augment import strong, weak


def test_views_are_seeded_shape_preserving_and_in_range() -> None:
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    a = strong(x, torch.Generator().manual_seed(0))
    b = strong(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    w = weak(x, torch.Generator().manual_seed(1), shift=0)
    assert torch.equal(w, x)  # no shift → identity
    shifted = weak(x, torch.Generator().manual_seed(1))
    assert not torch.equal(shifted, x)
