"""Mixup (SemiFL's mix loss): a convex combination of rows, targets mixed by the same λ, seeded."""

import torch

from ecogen.training.mixup import mix_draw, mixup


def test_mixup_is_a_convex_combination_with_targets_mixed_by_the_same_lambda() -> None:
    x = torch.arange(12.0).reshape(3, 1, 2, 2)
    targets = torch.eye(3)  # one-hot: row i is class i
    perm = torch.tensor([2, 0, 1])
    mixed, mixed_targets = mixup(x, targets, 0.3, perm)
    assert torch.allclose(mixed, 0.3 * x + 0.7 * x[perm])
    # the same λ on the targets: row i is 0.3 of its own class and 0.7 of its partner's
    assert torch.allclose(mixed_targets[0], torch.tensor([0.3, 0.0, 0.7]))
    assert torch.allclose(mixed_targets.sum(-1), torch.ones(3))
    assert torch.equal(x, torch.arange(12.0).reshape(3, 1, 2, 2))  # the inputs are left as they were
    same, same_targets = mixup(x, targets, 1.0, perm)  # λ = 1: nothing mixed in
    assert torch.equal(same, x) and torch.equal(same_targets, targets)


def test_mix_draw_is_seeded_and_beta_distributed() -> None:
    a = mix_draw(5, 0.75, torch.Generator().manual_seed(3))
    b = mix_draw(5, 0.75, torch.Generator().manual_seed(3))
    c = mix_draw(5, 0.75, torch.Generator().manual_seed(4))
    assert a[0] == b[0] and torch.equal(a[1], b[1])
    assert (a[0], a[1].tolist()) != (c[0], c[1].tolist())
    assert sorted(a[1].tolist()) == list(range(5))
    g = torch.Generator().manual_seed(0)
    lams = torch.tensor([mix_draw(2, 0.75, g)[0] for _ in range(2000)])
    assert ((lams > 0) & (lams < 1)).all()
    # Beta(0.75, 0.75): mean 1/2, variance 1 / (4 (2α + 1)) = 0.1; U-shaped (more mass near the ends)
    assert abs(lams.mean().item() - 0.5) < 0.03 and abs(lams.var().item() - 0.1) < 0.01
    assert ((lams < 0.1) | (lams > 0.9)).float().mean() > 0.25  # 0.28; uniform: 0.2
