"""FixMatch views and the pseudo-label mask."""

import torch

from ecogen.training.augment import pseudo_labels, strong, weak


def test_pseudo_label_mask_uses_the_confidence_threshold() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [1.0, 1.1, 0.9], [0.0, 0.0, 9.0]])
    labels, mask = pseudo_labels(logits, threshold=0.9)
    assert labels.tolist() == [0, 1, 2]
    assert mask.tolist() == [1.0, 0.0, 1.0]
    _, none = pseudo_labels(logits, threshold=1.0)
    assert none.sum() == 0
    _, every = pseudo_labels(logits, threshold=0.0)
    assert every.sum() == 3


def test_views_are_seeded_shape_preserving_and_in_range() -> None:
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    a = strong(x, torch.Generator().manual_seed(0))
    b = strong(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    w = weak(x, torch.Generator().manual_seed(1), shift=0)
    assert torch.equal(w, x)  # no shift → identity
    shifted = weak(x, torch.Generator().manual_seed(1))
    assert not torch.equal(shifted, x)
