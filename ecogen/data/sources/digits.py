"""scikit-learn's bundled digits: 1,797 grey 8×8 images of 0-9, for fast tests and quick runs.

Bundled with scikit-learn, so it needs neither files nor a network.  It has no official test
split; a seeded permutation sets aside ``test_fraction`` of it as the test pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ecogen.data.pools import ImagePool, SourceImages

if TYPE_CHECKING:
    from ecogen.config.params import DataParams

SIDE = 8


def load(data: DataParams, seed: int) -> SourceImages:
    return load_digits_source(seed)


def load_digits_source(seed: int, test_fraction: float = 0.2) -> SourceImages:
    """Digits scaled from 0..16 to uint8 0..255, split into train/test pools by ``seed``."""
    from sklearn.datasets import load_digits  # sklearn is slow to import; only pay when used

    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)  # (1797, 8, 8)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return SourceImages(
        name="digits",
        train=ImagePool(x=x[train], y=y[train]),
        test=ImagePool(x=x[test], y=y[test]),
        class_names=[str(c) for c in bunch.target_names],
    )
