"""Routing transfer images to the teacher that knows their style, from edge prototypes.

A teacher's own confidence does not say whether an image is of its domain: on this project's
domains the edges' models are as confident — and wrong — on other domains' images as on their
own (the own teacher was the most confident one for 8–50 % of each domain's test images, see
docs/relay.md).  What does tell the styles apart is the FM's own token features: each edge uploads, once
per cycle, the mean FM token features of each class of its labelled set (its *style prototypes*,
computed on the edge with the FM it was delivered; no image leaves the edge), and the cloud sends
each transfer image to the teacher owning the nearest prototype.

Token features keep where things are (a rotated garment and an upright one differ in *where* its
features sit); pooling them away loses most of the rotation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecogen.data.prepared import Split, to_float
from ecogen.models.vit import ViT

PROTOTYPES = "prototypes.pt"  # an edge's style prototypes, beside its tunable modules


@torch.no_grad()
def style_features(encoder: ViT, x: Tensor, batch_size: int = 512) -> Tensor:
    """(B, C, H, W) float images → (B, T·dim): the FM encoder's layer-normalised token features
    (class token and every patch), flattened.  The encoder's head is not used."""
    was_training = encoder.training
    encoder.eval()
    out = []
    for i in range(0, len(x), batch_size):
        h = encoder.embedding(x[i : i + batch_size])
        for block in encoder.blocks:
            h = block(h)
        out.append(F.layer_norm(h, h.shape[-1:]).flatten(1))
    encoder.train(was_training)
    return torch.cat(out) if out else x.new_zeros((0, 0))


def class_prototypes(encoder: ViT, split: Split) -> Tensor:
    """An edge's style prototypes: the mean :func:`style_features` of each class its labelled
    images hold, (classes present, T·dim), stored as float16 (routing needs no more)."""
    labelled = split.labelled
    if not bool(labelled.any()):
        raise ValueError("style prototypes need labelled images")
    feats = style_features(encoder, to_float(split.x[labelled]))
    y = split.y[labelled]
    return torch.stack([feats[y == c].mean(0) for c in torch.unique(y)]).half()


def nearest_teacher(features: Tensor, prototypes: Sequence[Tensor]) -> Tensor:
    """(B,) index of the teacher owning the prototype nearest (Euclidean) to each feature row."""
    if not prototypes:
        raise ValueError("routing needs the prototypes of at least one teacher")
    dist = torch.stack([torch.cdist(features, p.to(features.dtype)).min(dim=1).values for p in prototypes])
    return dist.argmin(dim=0)


class StyleRouter(nn.Module):
    """images → the teacher whose style prototypes are nearest, on the FM's own features (a
    module, so the FM encoder and the prototypes move to the accelerator with the ensemble)."""

    def __init__(self, encoder: ViT, prototypes: Sequence[Tensor]) -> None:
        super().__init__()
        self.encoder = encoder
        for i, p in enumerate(prototypes):
            self.register_buffer(f"prototypes_{i}", p.float())
        self.teachers = len(prototypes)

    def forward(self, x: Tensor) -> Tensor:
        protos = [getattr(self, f"prototypes_{i}") for i in range(self.teachers)]
        return nearest_teacher(style_features(self.encoder, x), protos)
