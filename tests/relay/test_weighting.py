"""Teacher weighting and the naive relay's averaging maths."""

from __future__ import annotations

import pytest
import torch

from ecogen.relay.naive import average_uploads
from ecogen.relay.weighting import ensemble, teacher_weights
from ecogen.split.channel import TunableModules


def test_weights_sum_to_one_and_mean_is_uniform() -> None:
    probs = torch.rand(3, 5, 4).softmax(-1)
    for rule in ("mean", "confidence", "agreement"):
        w = teacher_weights(probs, rule)
        assert w.shape == (3, 5) and torch.allclose(w.sum(0), torch.ones(5))
    assert torch.allclose(teacher_weights(probs, "mean"), torch.full((3, 5), 1 / 3))


def test_confident_teacher_outweighs_an_unsure_one() -> None:
    sure = torch.tensor([[0.97, 0.01, 0.01, 0.01]])
    unsure = torch.tensor([[0.25, 0.25, 0.25, 0.25]])
    w = teacher_weights(torch.stack([sure, unsure]), "confidence")
    assert w[0, 0] > 0.9
    target = ensemble(torch.stack([sure, unsure]), w)
    assert target.argmax(-1).item() == 0 and torch.allclose(target.sum(-1), torch.ones(1))


def test_agreement_damps_the_teacher_that_contradicts_the_consensus() -> None:
    a = torch.tensor([[0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3]])
    b = torch.tensor([[0.85, 0.05, 0.05, 0.05]])
    rebel = torch.tensor([[0.1 / 3, 0.9, 0.1 / 3, 0.1 / 3]])  # as confident as a, but alone
    probs = torch.stack([a, b, rebel])
    by_conf = teacher_weights(probs, "confidence")
    by_agree = teacher_weights(probs, "agreement")
    assert by_agree[2, 0] < by_conf[2, 0] / 3 and by_agree[0, 0] > by_conf[0, 0]
    assert ensemble(probs, by_agree)[0, 0] > ensemble(probs, teacher_weights(probs, "mean"))[0, 0]


def test_bad_shapes_and_rules_fail() -> None:
    with pytest.raises(ValueError, match="teachers, batch, classes"):
        teacher_weights(torch.rand(4, 3), "mean")
    with pytest.raises(ValueError, match="unknown weighting"):
        teacher_weights(torch.rand(2, 3, 4), "vote")  # type: ignore[arg-type]


def test_naive_relay_is_the_unweighted_mean_of_the_uploads() -> None:
    uploads = {
        "a": TunableModules({"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])}),
        "b": TunableModules({"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([3.0])}),
        "c": TunableModules({"w": torch.tensor([2.0, 1.0]), "b": torch.tensor([0.0])}),
    }
    avg = average_uploads(uploads)
    assert torch.allclose(avg["w"], torch.tensor([2.0, 3.0])) and torch.allclose(
        avg["b"], torch.tensor([1.0])
    )
