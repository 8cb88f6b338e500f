"""FedAvg maths on tiny literal tensors."""

import pytest
import torch

from ecogen.federated.aggregate import fedavg, weighted_mean


def test_fedavg_weights_by_examples() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([4.0])}
    out = fedavg([(a, 1), (b, 3)])
    assert torch.allclose(out["w"], torch.tensor([2.5, 5.0]))
    assert torch.allclose(out["b"], torch.tensor([3.0]))


def test_fedavg_of_identical_states_is_identity_and_keeps_dtype() -> None:
    s = {"w": torch.randn(3, 2)}
    out = fedavg([(s, 5), ({"w": s["w"].clone()}, 7)])
    assert torch.allclose(out["w"], s["w"]) and out["w"].dtype == s["w"].dtype


def test_fedavg_single_update_and_errors() -> None:
    s = {"w": torch.tensor([1.0])}
    assert torch.equal(fedavg([(s, 4)])["w"], s["w"])
    with pytest.raises(ValueError):
        fedavg([])
    with pytest.raises(ValueError):
        fedavg([(s, 0)])
    with pytest.raises(KeyError):
        fedavg([(s, 1), ({"v": torch.tensor([1.0])}, 1)])


def test_weighted_mean() -> None:
    assert weighted_mean([(0.5, 1), (1.0, 3)]) == pytest.approx(0.875)
