"""What every image source returns: base images split into a train pool and a test pool.

The partition draws edge, client and public data only from the train pool and test sets only from
the test pool, so a test image is never seen in training whatever the partition sizes are.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class ImagePool:
    x: Tensor  # uint8 (N, C, H, W)
    y: Tensor  # int64 (N,), class index in [0, num_classes)
    # int64 (N,) domain index per image, for sources whose domains are folders of real images;
    # None where domains are made by transforming shared base images.
    domain: Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class SourceImages:
    name: str  # "fashion_mnist", "digits", "imagefolder"
    train: ImagePool
    test: ImagePool
    class_names: list[str]

    @property
    def domains_are_folders(self) -> bool:
        """True where each image already belongs to a domain, so no domain transform applies."""
        return self.train.domain is not None

    @property
    def channels(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.x.shape[-1])
