"""Small pieces every stage needs: the ViT config from params + data, seeds, example inputs."""

from __future__ import annotations

import numpy as np

from ecogen.config.params import ModelParams, Params
from ecogen.data.prepared import DataMeta, Split
from ecogen.models.vit import ViTConfig


def vit_config(model: ModelParams, meta: DataMeta) -> ViTConfig:
    return vit_config_for(model, meta.image_size, meta.channels, meta.num_classes)


def vit_config_for(model: ModelParams, image_size: int, channels: int, num_classes: int) -> ViTConfig:
    """The ViT that the ``model`` section builds for images of this size and these classes."""
    if image_size % model.patch_size:
        raise ValueError(
            f"model.patch_size {model.patch_size} does not divide the prepared image size {image_size}"
        )
    return ViTConfig(
        image_size=image_size,
        channels=channels,
        patch_size=model.patch_size,
        num_classes=num_classes,
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
    """The first ``n`` images, raw (uint8 (n, C, H, W)): what a logged model takes."""
    return split.x[:n].numpy()
