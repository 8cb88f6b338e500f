"""Server optimisers over the round's averaged client update, as pure functions.

Reddi et al., 2021, "Adaptive Federated Optimization" (arXiv 2003.00295): the server treats
Δ = avg_k(w_k) − w (the FedAvg result minus the round's starting point) as a pseudo-gradient and
steps along it with its own optimiser, whose state lives on the server between rounds.

* ``none``    — w ← w + η·Δ (η = 1 is FedAvg);
* ``fedavgm`` — m ← β·m + Δ;  w ← w + η·m (Hsu et al., 2019, arXiv 1909.06335);
* ``fedadam`` — m ← β1·m + (1 − β1)·Δ;  v ← β2·v + (1 − β2)·Δ²;  w ← w + η·m / (√v + τ)
  (no bias correction, as in Reddi et al.'s Algorithm 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

State = dict[str, Tensor]
ServerOptimizer = Literal["none", "fedavgm", "fedadam"]


@dataclass
class ServerState:
    """The server optimiser's moments, key by key (empty before the first round)."""

    m: State = field(default_factory=dict)
    v: State = field(default_factory=dict)


def server_step(
    current: State,
    averaged: State,
    state: ServerState,
    optimizer: ServerOptimizer = "none",
    lr: float = 1.0,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> tuple[State, ServerState]:
    """The next global modules from the current ones and the clients' average; pure."""
    if set(current) != set(averaged):
        raise KeyError("the averaged update and the current modules disagree on their keys")
    if optimizer == "none" and lr == 1.0:
        return dict(averaged), state  # FedAvg itself, bit for bit
    out: State = {}
    m_new: State = {}
    v_new: State = {}
    for key, w in current.items():
        w64 = w.to(torch.float64)
        delta = averaged[key].to(torch.float64) - w64
        if optimizer == "none":
            step = delta
        elif optimizer == "fedavgm":
            m = beta1 * state.m.get(key, torch.zeros_like(delta)) + delta
            m_new[key] = m
            step = m
        elif optimizer == "fedadam":
            m = beta1 * state.m.get(key, torch.zeros_like(delta)) + (1 - beta1) * delta
            v = beta2 * state.v.get(key, torch.zeros_like(delta)) + (1 - beta2) * delta.square()
            m_new[key], v_new[key] = m, v
            step = m / (v.sqrt() + tau)
        else:
            raise ValueError(f"unknown server optimizer {optimizer!r}")
        out[key] = (w64 + lr * step).to(w.dtype)
    return out, ServerState(m_new, v_new)
