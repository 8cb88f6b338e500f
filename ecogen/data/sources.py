"""Pick the image source named in ``params.data.source``.

Every source returns :class:`~ecogen.data.pools.SourceImages`: uint8 (N, C, H, W) images, int64
labels and class names, split into a train pool and a test pool.
"""

from __future__ import annotations

from ecogen.config.params import DataParams
from ecogen.data.digits import load_digits_source
from ecogen.data.fashion_mnist import load_fashion_mnist
from ecogen.data.imagefolder import load_imagefolder
from ecogen.data.pools import SourceImages


def load_source(data: DataParams, seed: int) -> SourceImages:
    """Base images of ``data.source``; ``seed`` drives the train/test split where one is made."""
    if data.source == "fashion_mnist":
        return load_fashion_mnist(data.root)
    if data.source == "digits":
        return load_digits_source(seed)
    if data.source == "imagefolder":
        assert data.root is not None  # DataParams requires it
        return load_imagefolder(data.root, list(data.domains), seed, image_size=data.image_size)
    raise ValueError(f"unknown data.source {data.source!r}")  # unreachable while params validate
