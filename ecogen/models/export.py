"""Models as users take them away: raw images in, class probabilities or features out.

:func:`export_raw_images` wraps a module in :class:`RawImages` (uint8 0-255 → the [-1, 1] floats
the stages train on, via :func:`~ecogen.data.prepared.to_float`) and exports it with
``torch.export``: a graph of torch operators that loads with torch alone, no EcoGen code, no
pickle.  ``torch.jit`` (TorchScript) would do the same, but torch deprecates ``trace``, ``save``
and ``load`` in favour of ``torch.export``, and every load would say so.
"""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram

from ecogen.data.prepared import to_float
from ecogen.models.vit import ViT
from ecogen.runtime.backends import exporting

# what a logged model returns: softmax over the module's logits, or the module's output as is
ModelOutput = Literal["probabilities", "features"]


class PooledFeatures(nn.Module):
    """The FM encoder as a feature extractor: the final norm of its tokens averaged, the vector its
    head pools (:class:`~ecogen.models.vit.Head`) before the MLP that MAE pre-training never trains."""

    def __init__(self, encoder: ViT) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) in [-1, 1] → (B, dim)
        h = self.encoder.embedding(x)
        for block in self.encoder.blocks:
            h = block(h)
        return self.encoder.head.norm(h).mean(dim=1)


class RawImages(nn.Module):
    def __init__(self, net: nn.Module, output: ModelOutput) -> None:
        super().__init__()
        self.net = net
        self.softmax = output == "probabilities"

    def forward(self, x: Tensor) -> Tensor:  # uint8 (B, C, H, W) → (B, classes) or (B, features)
        out = self.net(to_float(x))
        return out.softmax(dim=-1) if self.softmax else out


def export_raw_images(module: nn.Module, output: ModelOutput, example: np.ndarray) -> ExportedProgram:
    """``module`` (which takes (B, C, H, W) floats in [-1, 1]) as a program that takes uint8 images
    shaped like ``example``, any batch size.  ``module`` itself is left as it was."""
    if example.dtype != np.uint8 or example.ndim != 4:
        raise ValueError(
            f"example must be raw uint8 images (B, C, H, W), got {example.dtype} {example.shape}"
        )
    net = copy.deepcopy(module).eval()
    merge = getattr(net, "merge_and_unload", None)
    if callable(merge):  # a peft model: LoRA folded into the weights leaves a plain, exportable ViT
        net = merge()
    # two images at least: export fixes a dimension it sees with size 1
    x = torch.from_numpy(np.concatenate([example, example]))
    with exporting():  # torch.export switches backends off process-wide: no batch runs meanwhile
        return torch.export.export(RawImages(net, output), (x,), dynamic_shapes=({0: Dim("batch")},))
