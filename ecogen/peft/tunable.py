"""Tunable modules: exactly the parameters with ``requires_grad=True`` after PEFT is applied.

These are the only weights that ever cross a link after the FM's first delivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn


def tunable_state(module: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the tunable parameters, keyed by their names in ``module``."""
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def load_tunable_state(module: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy ``state`` into the tunable parameters; the key sets must match exactly."""
    params = dict(module.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise KeyError(f"tunable state mismatch: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, value in state.items():
        params[name].data.copy_(value)


def state_bytes(state: dict[str, Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def module_bytes(module: nn.Module) -> int:
    """Size of every parameter and buffer: what shipping the whole model would cost."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


@contextmanager
def frozen_factor(models: list[nn.Module], factor: str | None) -> Iterator[None]:
    """While inside, the tunable parameters whose name holds ``factor`` (e.g. ``lora_A``) are frozen
    in ``models``: they neither train nor travel.  They are tunable again on exit, so what is saved
    afterwards is the whole set of modules.  ``None``: nothing is frozen."""
    held = [
        p
        for m in models
        for n, p in m.named_parameters()
        if factor is not None and factor in n and p.requires_grad
    ]
    for p in held:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in held:
            p.requires_grad_(True)
