"""FedAvg maths on tiny literal tensors."""

import pytest
import torch

from ecogen.federated.aggregate import fedavg, lora_residual, weighted_mean


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


LAYER = "blocks.0.attn.qkv"  # a LoRA layer, as peft names its factors


def _lora(seed: int, rank: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        f"{LAYER}.lora_A.default.weight": torch.randn(rank, 5, generator=g),  # (r, in)
        f"{LAYER}.lora_B.default.weight": torch.randn(7, rank, generator=g),  # (out, r)
        "head.weight": torch.randn(3, 5, generator=g),  # not LoRA: no residual
    }


def _effective(w0: torch.Tensor, state: dict[str, torch.Tensor], s: float) -> torch.Tensor:
    """W₀ + s·B·A of the layer."""
    a, b = state[f"{LAYER}.lora_A.default.weight"], state[f"{LAYER}.lora_B.default.weight"]
    return w0 + s * b @ a


def test_fedex_residual_makes_the_average_of_lora_factors_exact() -> None:
    """FedEx-LoRA: W₀ + U·V + s·B̄·Ā is the weighted mean of the participants' W₀ + s·B_k·A_k."""
    s, w0 = 2.0, torch.randn(7, 5, generator=torch.Generator().manual_seed(9))
    updates = [(_lora(1), 100), (_lora(2), 30), (_lora(3), 500)]
    u, v = lora_residual(updates, {LAYER: s})[LAYER]
    assert u.shape == (7, 3 * 2) and v.shape == (3 * 2, 5)  # rank K·r at most
    want = sum(n * _effective(w0, st, s) for st, n in updates) / 630
    got = _effective(w0 + u @ v, fedavg(updates), s)
    assert (got - want).abs().max().item() <= 1e-6
    # without the residual the separate average misses by far more
    assert (_effective(w0, fedavg(updates), s) - want).abs().max().item() > 1e-2


def test_fedex_residual_of_identical_participants_is_zero() -> None:
    same = _lora(4)
    u, v = lora_residual([(same, 3), ({k: t.clone() for k, t in same.items()}, 5)], {LAYER: 2.0})[LAYER]
    assert (u @ v).abs().max().item() <= 1e-12
    with pytest.raises(ValueError):
        lora_residual([(same, 0)], {LAYER: 2.0})
