"""Feature-space pseudo-labels: the kNN vote, the class-balanced hard filter, and a split relabelled
through a real (tiny) ViT encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ecogen.config.params import HfslParams
from ecogen.data.prepared import UNLABELLED, Split
from ecogen.federated.strategies.base import trained_examples
from ecogen.models.vit import ViT, ViTConfig
from ecogen.training.feature_labels import (
    FeatureLabelled,
    balanced_keep,
    feature_labelled,
    knn_vote,
    pooled_features,
)


def test_knn_vote_takes_the_majority_of_the_nearest_and_its_share() -> None:
    bank = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    bank_y = torch.tensor([0, 0, 1, 1, 1])
    queries = F.normalize(torch.tensor([[1.0, 0.05], [0.05, 1.0]]), dim=1)
    labels, confidence = knn_vote(bank, bank_y, queries, k=3, classes=2)
    assert labels.tolist() == [0, 1]
    assert confidence.tolist() == pytest.approx([2 / 3, 1.0])


def test_knn_vote_refuses_an_empty_bank() -> None:
    with pytest.raises(ValueError, match="labelled bank"):
        knn_vote(torch.zeros((0, 2)), torch.zeros(0, dtype=torch.long), torch.ones((1, 2)), 3, 2)


def test_balanced_keep_caps_every_class_at_its_share_surest_first() -> None:
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    confidence = torch.tensor([0.1, 0.9, 0.5, 0.8, 0.2, 0.3, 0.4, 0.6, 0.7, 0.2])
    kept = balanced_keep(labels, confidence, keep=0.5, classes=2)  # quota int(0.5 · 10 / 2) = 2
    assert torch.nonzero(kept).flatten().tolist() == [1, 3, 8, 9]  # class 0's surest two, class 1's two
    assert not balanced_keep(labels, confidence, keep=0.0, classes=2).any()
    assert int(balanced_keep(labels, confidence, keep=1.0, classes=2).sum()) == 7  # 5 of class 0, 2 of 1
    # a confidence floor keeps only the sure votes, quota or not
    sure = balanced_keep(labels, confidence, keep=1.0, classes=2, min_confidence=0.6)
    assert torch.nonzero(sure).flatten().tolist() == [1, 3, 7, 8]
    with pytest.raises(ValueError, match="keep"):
        balanced_keep(labels, confidence, keep=1.5, classes=2)


def _encoder() -> ViT:
    torch.manual_seed(0)
    return ViT(
        ViTConfig(image_size=8, patch_size=4, channels=1, num_classes=3, dim=8, depth=1, heads=2)
    ).eval()


def test_a_split_keeps_its_labels_and_gains_pseudo_labels_within_the_quota() -> None:
    encoder = _encoder()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (30, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.full((30,), UNLABELLED)
    y[:6] = torch.tensor([0, 1, 2, 0, 1, 2])
    split = Split(x, y)
    empty_y = torch.zeros(0, dtype=torch.long)
    out = feature_labelled(split, encoder, torch.zeros((0, 8)), empty_y, 0.6, k=3)
    assert torch.equal(out.y[:6], y[:6]) and torch.equal(out.x, x)
    gained = int(out.labelled.sum()) - 6
    assert 0 < gained <= 3 * int(0.6 * 24 / 3)
    assert bool(((out.y[6:] == UNLABELLED) | ((out.y[6:] >= 0) & (out.y[6:] < 3))).all())
    # the same through the lazy source, twice: computed once, the same labels
    source = FeatureLabelled(
        split, lambda s: feature_labelled(s, encoder, torch.zeros((0, 8)), empty_y, 0.6, k=3)
    )
    assert torch.equal(source.load().y, out.y) and torch.equal(source.labels(), out.y) and len(source) == 30
    # the labels held stay what they were: FedAvg's "labelled" weight counts them, not the votes
    assert torch.equal(out.held_labels, y != UNLABELLED) and torch.equal(
        source.load().held_labels, y != UNLABELLED
    )
    cfg = HfslParams(fedavg_weights="labelled")
    assert trained_examples(out, cfg) == 6 < int(out.labelled.sum())
    assert trained_examples(out, HfslParams(fedavg_weights="trained")) == int(out.labelled.sum())
    # only unanimous votes: a subset of those kept without the floor
    unanimous = feature_labelled(split, encoder, torch.zeros((0, 8)), empty_y, 0.6, k=3, min_confidence=1.0)
    assert bool((unanimous.labelled <= out.labelled).all())


def test_pooled_features_are_unit_vectors_one_per_image() -> None:
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    feats = pooled_features(_encoder(), x, batch_size=2)
    assert feats.shape == (5, 8)
    assert torch.allclose(feats.norm(dim=1), torch.ones(5))
