"""How the teachers' predictions become one target per sample (pure functions).

Plain averaging lets two confident, contradicting teachers cancel into a flat target.  The
"buffering contradictions" rules instead weight each teacher per sample:

* ``confidence``: w_t ∝ exp(−H(p_t) / τ), a teacher that is sure of a sample counts more;
* ``agreement``: confidence × the teacher's agreement with the others' mean prediction
  (Σ_k p_t,k · p̄_¬t,k), so a confident teacher that contradicts the consensus is damped;
* ``routed``: all the weight on the teacher an image is routed to (by the edges' style
  prototypes, :mod:`ecogen.relay.routing`) — :func:`routed_weights`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Weighting = Literal["mean", "confidence", "agreement", "routed"]


def entropy(probs: Tensor) -> Tensor:  # (..., K) → (...)
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1)


def teacher_weights(probs: Tensor, rule: Weighting, tau: float = 0.25) -> Tensor:
    """``probs`` (T teachers, B samples, K classes) → weights (T, B) that sum to 1 over T."""
    if probs.dim() != 3:
        raise ValueError(f"expected (teachers, batch, classes), got shape {tuple(probs.shape)}")
    T = probs.shape[0]
    if rule == "mean" or T == 1:
        return torch.full(probs.shape[:2], 1.0 / T, dtype=probs.dtype, device=probs.device)
    score = -entropy(probs) / tau  # (T, B) log-confidence
    if rule == "agreement":
        others = (probs.sum(0, keepdim=True) - probs) / (T - 1)  # mean of the other teachers
        score = score + (probs * others).sum(-1).clamp_min(1e-6).log()
    elif rule == "routed":
        raise ValueError("routed weights come from routing, not from the teachers' predictions")
    elif rule != "confidence":
        raise ValueError(f"unknown weighting {rule!r}")
    return score.softmax(dim=0)


def ensemble(probs: Tensor, weights: Tensor) -> Tensor:
    """Σ_t w_t,b · p_t,b — the per-sample target distribution (B, K)."""
    return (weights[..., None] * probs).sum(0)


def routed_weights(route: Tensor, teachers: int) -> Tensor:
    """``route`` (B,) teacher indices → weights (T, B): one-hot, each image to its teacher."""
    return torch.nn.functional.one_hot(route, teachers).T.to(torch.float32)
