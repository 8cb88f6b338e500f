"""Pseudo-labels: FixMatch's fixed threshold, distribution alignment, class-wise thresholds."""

import pytest
import torch

from ecogen.training.pseudo_label import PseudoLabeller, class_prior, flex_warp, pseudo_labels


def test_pseudo_label_mask_uses_the_confidence_threshold() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [1.0, 1.1, 0.9], [0.0, 0.0, 9.0]])
    labels, mask = pseudo_labels(logits, threshold=0.9)
    assert labels.tolist() == [0, 1, 2]
    assert mask.tolist() == [1.0, 0.0, 1.0]
    _, none = pseudo_labels(logits, threshold=1.0)
    assert none.sum() == 0
    _, every = pseudo_labels(logits, threshold=0.0)
    assert every.sum() == 3
    fixed = PseudoLabeller("fixed", 0.9)
    assert all(torch.equal(a, b) for a, b in zip(fixed(logits), pseudo_labels(logits, 0.9), strict=True))


def test_class_prior_is_smoothed_label_frequency_ignoring_unlabelled() -> None:
    prior = class_prior(torch.tensor([0, 0, 0, 1, -1, -1]), num_classes=3)
    assert prior.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert class_prior(torch.tensor([-1, -1]), 4).tolist() == pytest.approx([0.25] * 4)


def test_alignment_lifts_the_class_the_model_under_predicts() -> None:
    # the model favours class 0 everywhere; the client's labels say the classes are balanced
    logits = torch.log(torch.tensor([[0.70, 0.30], [0.60, 0.40], [0.55, 0.45], [0.90, 0.10]]))
    fixed_labels, _ = pseudo_labels(logits, 0.0)
    aligned = PseudoLabeller("aligned", 0.0, prior=torch.tensor([0.5, 0.5]))
    labels, mask = aligned(logits)
    assert fixed_labels.tolist() == [0, 0, 0, 0]
    assert labels.tolist() == [0, 1, 1, 0]  # mean prediction (0.6875, 0.3125) divided out
    assert mask.sum() == 4
    assert aligned.running is not None and aligned.running.tolist() == pytest.approx([0.6875, 0.3125])


def test_adaptive_thresholds_are_lower_for_classes_rarely_predicted_confidently() -> None:
    assert flex_warp(torch.tensor([0.0, 0.5, 1.0])).tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    # class 0: three confident predictions; class 1: one, at 0.9 < τ = 0.95
    probs = torch.tensor([[0.99, 0.01], [0.98, 0.02], [0.97, 0.03], [0.10, 0.90]])
    labeller = PseudoLabeller("adaptive", 0.95)
    labels, mask = labeller(torch.log(probs))
    assert labels.tolist() == [0, 0, 0, 1]
    # σ = (3/4, 0): class 1's bar drops to 0 while nothing of it is confident; class 0 keeps τ
    assert mask.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert PseudoLabeller("fixed", 0.95)(torch.log(probs))[1].tolist() == [1.0, 1.0, 1.0, 0.0]
    low = torch.tensor([[0.96, 0.04], [0.90, 0.10]])  # class 0 at 0.90 < τ stays out
    assert labeller(torch.log(low))[1].tolist() == [1.0, 0.0]


def test_soft_targets_are_the_teachers_distribution_masked_by_tau() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]]))
    probs, mask = PseudoLabeller("soft", 0.5)(logits)
    assert probs.tolist()[0] == pytest.approx([0.7, 0.2, 0.1], abs=1e-6)
    assert mask.tolist() == [1.0, 0.0]
    _, every = PseudoLabeller("soft", 0.0)(logits)
    assert every.sum() == 2
