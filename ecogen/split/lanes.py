"""Lane-aware layers: one forward pass for many participants whose only differences are the
weights of some Linear and LayerNorm layers (LoRA's A and B, a trained head).

The input holds every lane's rows one lane after the other, ``(lanes · n, ...)``.  A layer whose
weights are stacked per lane, ``(lanes, out, in)``, views its input as ``(lanes, rows, in)`` and
multiplies lane by lane in one batched matmul; every other layer — the frozen backbone, which is
most of the arithmetic — runs once over all the rows as if they were one batch, with the fused
kernels it always uses.  This is what ``vmap`` over ``functional_call`` computes, without vmap's
per-operator batching rules: no written-out attention, no per-lane copies of frozen weights.

:func:`lane_layers` says whether a segment can run this way (its stacked weights all belong to
``nn.Linear`` / ``nn.LayerNorm`` layers); :func:`lane_forwards` swaps those layers' forwards while
the segment runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LANE_KINDS = (nn.Linear, nn.LayerNorm)
LANE_ATTRS = ("weight", "bias")


def lane_layers(segment: nn.Module, stacked: list[str]) -> dict[str, nn.Module] | None:
    """The layers holding the ``stacked`` parameters (names inside ``segment``), by module path;
    None when one of them is not a Linear or LayerNorm weight or bias."""
    layers: dict[str, nn.Module] = {}
    for name in stacked:
        path, _, attr = name.rpartition(".")
        layer = segment.get_submodule(path) if path else segment
        if not isinstance(layer, LANE_KINDS) or attr not in LANE_ATTRS:
            return None
        layers[path] = layer
    return layers


def _by_lane(x: Tensor, lanes: int) -> Tensor:
    return x.reshape(lanes, -1, x.shape[-1])


def _linear(layer: nn.Linear, weights: dict[str, Tensor], lanes: int, x: Tensor) -> Tensor:
    w = weights.get("weight")
    b = weights.get("bias", layer.bias)
    xs = _by_lane(x, lanes)
    # w None: only the bias differs between lanes
    y = F.linear(xs, layer.weight) if w is None else torch.bmm(xs, w.transpose(1, 2))
    if b is not None:
        y = y + (b.unsqueeze(1) if b.dim() == 2 else b)
    return y.reshape(*x.shape[:-1], y.shape[-1])


def _layer_norm(layer: nn.LayerNorm, weights: dict[str, Tensor], lanes: int, x: Tensor) -> Tensor:
    y = _by_lane(F.layer_norm(x, layer.normalized_shape, None, None, layer.eps), lanes)
    w, b = weights.get("weight", layer.weight), weights.get("bias", layer.bias)
    if w is not None:
        y = y * (w.unsqueeze(1) if w.dim() == 2 else w)
    if b is not None:
        y = y + (b.unsqueeze(1) if b.dim() == 2 else b)
    return y.reshape(x.shape)


@contextmanager
def lane_forwards(
    segment: nn.Module, layers: dict[str, nn.Module], params: dict[str, Tensor], lanes: int
) -> Iterator[None]:
    """While the body runs, the ``layers`` of ``segment`` compute with ``params`` (segment-local
    names → stacked ``(lanes, ...)`` tensors) on inputs of ``lanes`` lanes, one after another."""
    per_layer: dict[str, dict[str, Tensor]] = {path: {} for path in layers}
    for name, value in params.items():
        path, _, attr = name.rpartition(".")
        per_layer[path][attr] = value
    for path, layer in layers.items():
        if isinstance(layer, nn.Linear):
            layer.forward = partial(_linear, layer, per_layer[path], lanes)  # type: ignore[method-assign]
        elif isinstance(layer, nn.LayerNorm):
            layer.forward = partial(_layer_norm, layer, per_layer[path], lanes)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in layers.values():
            del layer.forward
