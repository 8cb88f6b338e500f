"""Small pieces every stage needs: the ViT config from params + data, seeds, example inputs."""

from __future__ import annotations

import numpy as np

from ecogen.config.params import ModelParams, Params
from ecogen.data.prepared import DataMeta, Split, to_float
from ecogen.models.vit import ViTConfig


def vit_config(model: ModelParams, meta: DataMeta) -> ViTConfig:
    if meta.image_size % model.patch_size:
        raise ValueError(
            f"model.patch_size {model.patch_size} does not divide the prepared image size {meta.image_size}"
        )
    return ViTConfig(
        image_size=meta.image_size,
        channels=meta.channels,
        patch_size=model.patch_size,
        num_classes=meta.num_classes,
        dim=model.dim,
        depth=model.depth,
        heads=model.heads,
        mlp_ratio=model.mlp_ratio,
        decoder_dim=model.decoder_dim,
        decoder_depth=model.decoder_depth,
        head_hidden=model.head_hidden,
    )


def edge_seed(params: Params, domain: str) -> int:
    """Each edge gets its own, stable seed."""
    return params.seed + 1 + [str(d) for d in params.data.domains].index(domain)


def example_input(split: Split, n: int = 2) -> np.ndarray:
    return to_float(split.x[:n]).numpy().astype(np.float32)


def mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")
