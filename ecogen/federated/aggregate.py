"""Aggregation maths as pure functions over ``list[(state_dict, n_examples)]``.

FedAvg: McMahan et al., 2017, "Communication-Efficient Learning of Deep Networks from
Decentralized Data" (arXiv 1602.05629): the example-weighted mean of client states.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Update = tuple[dict[str, Tensor], int]


def fedavg(updates: Sequence[Update]) -> dict[str, Tensor]:
    """Σ_k n_k·w_k / Σ_k n_k, key by key. All states must share keys and shapes."""
    if not updates:
        raise ValueError("fedavg needs at least one update")
    keys = set(updates[0][0])
    for state, n in updates:
        if n <= 0:
            raise ValueError(f"every update needs a positive example count, got {n}")
        if set(state) != keys:
            raise KeyError("updates disagree on their keys")
    total = float(sum(n for _, n in updates))
    out: dict[str, Tensor] = {}
    for key in updates[0][0]:
        acc = torch.zeros_like(updates[0][0][key], dtype=torch.float64)
        for state, n in updates:
            acc += state[key].to(torch.float64) * (n / total)
        out[key] = acc.to(updates[0][0][key].dtype)
    return out


def weighted_mean(values: Sequence[tuple[float, int]]) -> float:
    """Example-weighted mean of scalars, e.g. client accuracies."""
    total = sum(n for _, n in values)
    if total <= 0:
        raise ValueError("weighted_mean needs a positive total weight")
    return sum(v * n for v, n in values) / total


# ---- robust aggregation (each a pure function of the uploaded states and the delivered one) ----


def _stack(states: Sequence[dict[str, Tensor]], key: str) -> Tensor:
    return torch.stack([s[key].to(torch.float64) for s in states])


def coordinate_median(states: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The coordinate-wise median of the states (Yin et al., 2018, arXiv 1803.01498); with an even
    count, the mean of the two middle values.  Every state counts the same."""
    return weighted_median([(s, 1) for s in states])


def trimmed_mean(states: Sequence[dict[str, Tensor]], fraction: float) -> dict[str, Tensor]:
    """The coordinate-wise mean after dropping the ``fraction`` largest and smallest values of each
    coordinate (Yin et al., 2018; ``int(fraction · K)`` of K from each end); every state counts the
    same."""
    if not states:
        raise ValueError("a trimmed mean needs at least one state")
    cut = int(fraction * len(states))
    if 2 * cut >= len(states):
        raise ValueError(f"trimming {cut} from each end of {len(states)} states leaves nothing")
    out = {}
    for key, value in states[0].items():
        ordered = _stack(states, key).sort(dim=0).values
        out[key] = ordered[cut : len(states) - cut].mean(dim=0).to(value.dtype)
    return out


def _sorted_with_weights(updates: Sequence[Update], key: str) -> tuple[Tensor, Tensor]:
    """Each coordinate's values in ascending order (K, ...) and the weights that go with them."""
    values = _stack([s for s, _ in updates], key)
    for _, n in updates:
        if n <= 0:
            raise ValueError(f"every update needs a positive example count, got {n}")
    shape = (-1,) + (1,) * (values.dim() - 1)
    weights = torch.tensor([float(n) for _, n in updates], dtype=torch.float64).view(shape)
    order = values.argsort(dim=0)
    return values.gather(0, order), weights.expand_as(values).gather(0, order)


def weighted_median(updates: Sequence[Update]) -> dict[str, Tensor]:
    """The coordinate-wise median with each state weighted by its examples n_k: the value at which
    half the total weight lies on either side (the mean of the two values that share the middle
    when the cumulative weight hits half exactly, as the plain median of an even count)."""
    if not updates:
        raise ValueError("a median needs at least one state")
    out = {}
    for key, value in updates[0][0].items():
        ordered, weights = _sorted_with_weights(updates, key)
        cumulative = weights.cumsum(dim=0)
        half = cumulative[-1:] / 2
        last = len(updates) - 1
        lower = (cumulative < half).sum(dim=0, keepdim=True).clamp(max=last)  # first reaching half
        upper = (cumulative <= half).sum(dim=0, keepdim=True).clamp(max=last)  # first beyond half
        middle = (ordered.gather(0, lower) + ordered.gather(0, upper)) / 2
        out[key] = middle.squeeze(0).to(value.dtype)
    return out


def weighted_trimmed_mean(updates: Sequence[Update], fraction: float) -> dict[str, Tensor]:
    """The coordinate-wise weighted mean of what is left after cutting ``fraction`` of the total
    weight from each end (a value straddling a cut keeps the part of its weight inside)."""
    if not updates:
        raise ValueError("a trimmed mean needs at least one state")
    if not 0.0 <= fraction < 0.5:
        raise ValueError(f"trimming {fraction} of the weight from each end leaves nothing")
    out = {}
    for key, value in updates[0][0].items():
        ordered, weights = _sorted_with_weights(updates, key)
        top = weights.cumsum(dim=0)
        total = top[-1:]
        low, high = fraction * total, (1 - fraction) * total
        kept = (torch.minimum(top, high) - torch.maximum(top - weights, low)).clamp(min=0)
        out[key] = ((ordered * kept).sum(dim=0) / kept.sum(dim=0)).to(value.dtype)
    return out


def update_norm(state: dict[str, Tensor], start: dict[str, Tensor]) -> float:
    """‖w − w₀‖₂ over every module of the state."""
    squares = torch.stack([((state[k].double() - start[k].double()) ** 2).sum() for k in state])
    return float(squares.sum().sqrt())


def clip_update(state: dict[str, Tensor], start: dict[str, Tensor], max_norm: float) -> dict[str, Tensor]:
    """w₀ + (w − w₀)·min(1, C/‖w − w₀‖): the update scaled down to norm ``max_norm`` at most
    (norm clipping, Sun et al., 2019, arXiv 1911.07963)."""
    norm = update_norm(state, start)
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return {
        k: (start[k].double() + (state[k].double() - start[k].double()) * scale).to(v.dtype)
        for k, v in state.items()
    }


def aggregate(
    updates: Sequence[Update],
    start: dict[str, Tensor],
    rule: str,
    trim: float = 0.2,
    clip: float = 1.0,
    weighted: bool = True,
) -> dict[str, Tensor]:
    """The edge's aggregation ``rule`` over the uploaded (state, n_k): ``fedavg``, ``median``,
    ``trimmed_mean`` (``trim`` from each end) or ``norm_clip`` (each update clipped to ``clip``,
    then FedAvg); ``start`` is what the round delivered.  ``weighted``: the median and the trimmed
    mean weigh each state by its examples, as FedAvg does; otherwise every state counts the same."""
    if rule == "fedavg":
        return fedavg(updates)
    if rule == "median":
        return weighted_median(updates) if weighted else coordinate_median([s for s, _ in updates])
    if rule == "trimmed_mean":
        if weighted:
            return weighted_trimmed_mean(updates, trim)
        return trimmed_mean([s for s, _ in updates], trim)
    if rule == "norm_clip":
        return fedavg([(clip_update(s, start, clip), n) for s, n in updates])
    raise ValueError(f"unknown aggregation rule {rule!r}")


# ---- FedEx-LoRA's exact aggregation of LoRA factors ----

LORA_A, LORA_B = ".lora_A.", ".lora_B."  # peft's names: <layer>.lora_A.<adapter>.weight, lora_B likewise


def lora_layers(state: dict[str, Tensor]) -> dict[str, tuple[str, str]]:
    """Each LoRA layer of a tunable state: its name → (key of A (r, in), key of B (out, r))."""
    return {k.split(LORA_A)[0]: (k, k.replace(LORA_A, LORA_B)) for k in state if LORA_A in k}


def lora_residual(updates: Sequence[Update], scaling: dict[str, float]) -> dict[str, tuple[Tensor, Tensor]]:
    """FedEx-LoRA's residual (Singhal et al., 2024, "Exact Aggregation for Federated and Efficient
    Fine-Tuning of Foundation Models", arXiv 2410.09432): per LoRA layer with scaling s (LoRA's α/r,
    ``scaling[layer]``), factors (U, V) with U·V = s·(Σ_k w_k·B_k·A_k − B̄·Ā), w_k = n_k / Σ n and
    B̄, Ā the FedAvg of the factors (:func:`fedavg`).  Added to the layer's frozen weight W₀, it makes
    W₀ + U·V + s·B̄·Ā the example-weighted mean of the participants' W₀ + s·B_k·A_k exactly.

    As B̄ = Σ_k w_k·B_k, the residual is Σ_k w_k·B_k·(A_k − Ā): U = [s·w_1·B_1 … s·w_K·B_K]
    (out, K·r) and V = [A_1 − Ā; …; A_K − Ā] (K·r, in), of rank K·r at most."""
    if not updates:
        raise ValueError("the residual needs at least one update")
    if any(n <= 0 for _, n in updates):
        raise ValueError("every update needs a positive example count")
    total = float(sum(n for _, n in updates))
    weights = [n / total for _, n in updates]
    out: dict[str, tuple[Tensor, Tensor]] = {}
    for layer, (a_key, b_key) in lora_layers(updates[0][0]).items():
        dtype = updates[0][0][a_key].dtype
        a = torch.stack([s[a_key].to(torch.float64) for s, _ in updates])  # (K, r, in)
        a_mean = torch.einsum("k,kri->ri", torch.tensor(weights, dtype=torch.float64), a)
        b = [
            scaling[layer] * w * s[b_key].to(torch.float64)
            for w, (s, _) in zip(weights, updates, strict=True)
        ]
        u = torch.cat(b, dim=1)  # (out, K·r)
        v = (a - a_mean).flatten(0, 1)  # (K·r, in)
        out[layer] = (u.to(dtype), v.to(dtype))
    return out
