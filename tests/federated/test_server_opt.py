"""Server optimisers (Reddi et al., 2021) on tiny literal tensors, steps worked by hand."""

import pytest
import torch

from ecogen.federated.server_opt import ServerState, server_step


def _s(*values: float) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor(values)}


def test_none_at_lr_one_is_fedavg_and_lr_scales_the_step() -> None:
    out, _ = server_step(_s(1.0, 1.0), _s(3.0, 0.0), ServerState())
    assert torch.equal(out["w"], torch.tensor([3.0, 0.0]))
    out, _ = server_step(_s(1.0, 1.0), _s(3.0, 0.0), ServerState(), "none", lr=0.5)
    assert torch.allclose(out["w"], torch.tensor([2.0, 0.5]))


def test_fedavgm_accumulates_momentum_across_rounds() -> None:
    # round 1: Δ = 2 → m = 2, w = 0 + 2 = 2; round 2: Δ = 1 → m = 0.5·2 + 1 = 2, w = 2 + 2 = 4
    w, st = server_step(_s(0.0), _s(2.0), ServerState(), "fedavgm", lr=1.0, beta1=0.5)
    assert torch.allclose(w["w"], torch.tensor([2.0]))
    w, st = server_step(w, _s(3.0), st, "fedavgm", lr=1.0, beta1=0.5)
    assert torch.allclose(w["w"], torch.tensor([4.0]))
    assert torch.allclose(st.m["w"].float(), torch.tensor([2.0]))


def test_fedadam_step_matches_the_formula() -> None:
    # Δ = 0.2: m = 0.1·0.2 = 0.02; v = 0.01·0.04 = 4e-4; w = 1 + 0.1·0.02 / (0.02 + 1e-3)
    w, st = server_step(_s(1.0), _s(1.2), ServerState(), "fedadam", lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    assert w["w"].item() == pytest.approx(1.0 + 0.1 * 0.02 / (0.02 + 1e-3), rel=1e-6)
    assert st.v["w"].item() == pytest.approx(4e-4, rel=1e-6)
    # a second round with no client change: the moments still move w in the same direction
    w2, _ = server_step(w, w, st, "fedadam", lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    assert w2["w"].item() > w["w"].item()


def test_keys_must_agree_and_inputs_are_not_modified() -> None:
    cur, avg = _s(1.0), _s(2.0)
    server_step(cur, avg, ServerState(), "fedadam", lr=0.1)
    assert cur["w"].item() == 1.0 and avg["w"].item() == 2.0
    with pytest.raises(KeyError):
        server_step(cur, {"v": torch.tensor([1.0])}, ServerState())
