"""Byte accounting: numel × element_size per link class and direction; only legal payloads."""

import pytest
import torch

from ecogen.split.channel import Activation, Channel, Gradient, TunableModules, payload_bytes


def test_bytes_are_numel_times_element_size_per_link_and_direction() -> None:
    ch = Channel()
    ch.send(Activation(torch.zeros(4, 5, 8)), "d2d", "forward")  # 160 float32 = 640
    ch.send(
        Activation(torch.zeros(2, 3), labels=torch.zeros(2, dtype=torch.long)), "d2d", "forward"
    )  # 24 + 16
    ch.send(Gradient(torch.zeros(4, 5, 8, dtype=torch.float16)), "d2d", "backward")  # 320
    ch.send(
        TunableModules({"a": torch.zeros(10), "b": torch.zeros(2, 2, dtype=torch.float64)}),
        "edge_client",
        "up",
    )
    assert ch.ledger.bytes[("d2d", "forward")] == 640 + 40
    assert ch.ledger.bytes[("d2d", "backward")] == 320
    assert ch.ledger.bytes[("edge_client", "up")] == 40 + 32
    assert ch.ledger.by_link() == {"d2d": 1000, "edge_client": 72}
    assert ch.ledger.messages[("d2d", "forward")] == 2
    assert ch.ledger.snapshot()["edge_client/up"] == 72


def test_refuses_anything_but_activations_gradients_and_tunable_modules() -> None:
    ch = Channel()
    with pytest.raises(TypeError):
        ch.send(torch.zeros(3), "d2d", "forward")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ch.send({"x": torch.zeros(3)}, "edge_client", "up")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ch.send(TunableModules({"x": [1, 2]}), "edge_client", "up")  # type: ignore[dict-item]
    assert ch.ledger.total() == 0


def test_receiver_gets_a_detached_copy() -> None:
    x = torch.ones(2, requires_grad=True) * 2
    got = Channel().send(Activation(x), "d2d", "forward").tensor
    assert got.grad_fn is None and torch.equal(got, x.detach())
    got.add_(1)
    assert torch.equal(x.detach(), torch.full((2,), 2.0))
    assert payload_bytes(Activation(x)) == 8
