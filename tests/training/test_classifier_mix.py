"""Per-class accuracy and the accuracy a test set with another class mix would give."""

import math

import pytest
import torch
from torch import nn

from ecogen.data.prepared import Split
from ecogen.training.classifier import class_accuracy, mix_accuracy


class _Constant(nn.Module):
    """Predicts class 0 for every image."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[1.0, 0.0, 0.0]]).expand(len(x), 3) + self.w


def test_class_accuracy_counts_hits_per_true_class() -> None:
    split = Split(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 0, 1, 1, 1]))
    acc = class_accuracy(_Constant(), split, batch_size=2, accelerator="cpu", classes=3)
    assert acc[:2].tolist() == [1.0, 0.0] and math.isnan(acc[2].item())


def test_mix_accuracy_reweights_to_the_mix_over_known_classes() -> None:
    per_class = torch.tensor([0.9, 0.5, float("nan")])
    assert mix_accuracy(per_class, torch.tensor([0.5, 0.5, 0.0])) == pytest.approx(0.7)
    # a mix on a class the test lacks is renormalised over the known ones
    assert mix_accuracy(per_class, torch.tensor([0.2, 0.2, 0.6])) == pytest.approx(0.7)
    assert mix_accuracy(per_class, torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(0.9)
