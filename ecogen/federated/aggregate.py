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
