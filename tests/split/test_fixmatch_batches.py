"""FixMatch batching: B labelled + μB unlabelled per batch; an epoch covers the unlabelled once."""

from __future__ import annotations

import pytest
import torch

from ecogen.split.semi_supervised import FixMatchBatches


def _labelled(n: int, n_lab: int) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:n_lab]] = True
    return mask


def test_every_batch_holds_b_labelled_and_mu_b_unlabelled() -> None:
    lab = _labelled(100, 10)
    batches = list(FixMatchBatches(lab, batch_size=4, ratio=3, seed=0, use_unlabelled=True))
    assert len(batches) == 8  # ceil(90 unlabelled / 12)
    for b in batches[:-1]:
        assert sum(bool(lab[i]) for i in b) == 4 and sum(not lab[i] for i in b) == 12
    unlabelled = [i for b in batches for i in b if not lab[i]]
    assert sorted(unlabelled) == sorted(torch.nonzero(~lab).flatten().tolist())  # each exactly once
    assert {i for b in batches for i in b if lab[i]} == set(torch.nonzero(lab).flatten().tolist())


def test_all_labelled_is_one_plain_pass() -> None:
    lab = torch.ones(10, dtype=torch.bool)
    batches = list(FixMatchBatches(lab, batch_size=4, ratio=3, seed=0, use_unlabelled=True))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))


def test_labels_only_ignores_the_unlabelled() -> None:
    lab = _labelled(50, 10)
    batches = list(FixMatchBatches(lab, batch_size=4, ratio=3, seed=0, use_unlabelled=False))
    assert all(bool(lab[i]) for b in batches for i in b) and len(batches) == 3


def test_seeded_and_reshuffled_every_epoch() -> None:
    lab = _labelled(60, 12)
    a = FixMatchBatches(lab, batch_size=4, ratio=2, seed=1, use_unlabelled=True)
    b = FixMatchBatches(lab, batch_size=4, ratio=2, seed=1, use_unlabelled=True)
    first = list(a)
    assert first == list(b)
    assert list(a) != first  # the next epoch is a new permutation


def test_nothing_to_train_on_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot train"):
        FixMatchBatches(torch.zeros(5, dtype=torch.bool), 4, 3, 0, use_unlabelled=False)
