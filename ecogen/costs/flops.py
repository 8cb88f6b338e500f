"""FLOPs of each segment of the split ViT, counted by torch, not by hand.

``torch.utils.flop_counter.FlopCounterMode`` counts the matmuls and convolutions that actually
run (2 FLOPs per multiply-add); normalisation, activations and softmax are not counted, as in
the usual FLOP tallies of transformers.  Counting on the real model, at the real input shape,
means adapters (LoRA, prompts) count where they are, and a frozen weight's gradient, which
autograd never computes, does not count.  CPU's fused attention kernel is not known to the
counter, so the count runs on a copy whose attention is written out (same matmuls).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ecogen.models.vit import Attention, MaskedAutoencoder, ViT, split_segments


@dataclass(frozen=True)
class SegmentFlops:
    """FLOPs of one batch through each segment: embedding, every block, head (in chain order)."""

    images: int  # the batch they were counted on (FLOPs grow linearly with it)
    forward: list[int]
    # gradients of the segment's tunable weights, and of its input when a segment before it has
    # tunable weights (only then does the chain send a gradient further back)
    backward: list[int]
    trains: list[bool]  # does the segment hold tunable weights

    @property
    def blocks(self) -> list[int]:
        """Forward + backward FLOPs of each block."""
        return [f + b for f, b in zip(self.forward[1:-1], self.backward[1:-1], strict=True)]


def module_flops(module: nn.Module, x: Tensor) -> tuple[int, int]:
    """Forward and backward FLOPs of ``module`` on ``x``; the backward of ``sum(output)``, so only
    the module's own gradients are counted (the sum's backward is a broadcast, no FLOPs)."""
    with FlopCounterMode(display=False) as counter:
        out = module(x)
    forward = counter.get_total_flops()
    if not out.requires_grad:  # nothing to differentiate: frozen module on a constant input
        return forward, 0
    with FlopCounterMode(display=False) as counter:
        out.sum().backward()
    return forward, counter.get_total_flops()


def _counted_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose attention is written out, so the counter sees its matmuls."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, Attention):
            m.written_out = True  # the copy's own attribute: countable matmuls, same function
    return model


def mae_step_flops(mae: MaskedAutoencoder, batch: int, mask_ratio: float, seed: int = 0) -> int:
    """Forward + backward FLOPs of one masked-autoencoder step on ``batch`` images of its input
    shape (``mae(x, mask_ratio)`` returns the loss first); ``mae`` itself is left untouched."""
    counted = _counted_copy(mae)
    cfg = mae.encoder.cfg
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
    with FlopCounterMode(display=False) as counter:
        loss = counted(x, mask_ratio)[0]
        loss.backward()
    return counter.get_total_flops()


def segment_flops(model: nn.Module, batch: int, seed: int = 0) -> SegmentFlops:
    """Per-segment FLOPs of ``model`` (a ViT, LoRA/prompt-wrapped or not) on ``batch`` images of
    its input shape; the model itself is left untouched (the count runs on a copy)."""
    from ecogen.peft.edge import base_vit  # the peft library loads where an edge model is counted only

    vit: ViT = base_vit(_counted_copy(model))
    cfg = vit.cfg
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
    segments = split_segments(vit, [(k, k + 1) for k in range(cfg.depth)])
    forward: list[int] = []
    backward: list[int] = []
    trains: list[bool] = []
    for segment in segments:
        x = h.detach().requires_grad_(any(trains))  # a gradient is wanted further back
        f, b = module_flops(segment, x)
        forward.append(f)
        backward.append(b)
        trains.append(any(p.requires_grad for p in segment.parameters()))
        with torch.no_grad():
            h = segment(x)
    return SegmentFlops(batch, forward, backward, trains)


def image_flops(model: nn.Module, batch: int, seed: int = 0) -> float:
    """Forward + backward FLOPs of one image through the whole of ``model`` as it trains (only
    its tunable weights' gradients count), from :func:`segment_flops` on ``batch`` images."""
    counted = segment_flops(model, batch, seed)
    return (sum(counted.forward) + sum(counted.backward)) / counted.images
