"""A user's own images: one folder per domain, each in ImageFolder layout.

    <root>/<domain>/<class>/<image>.png|jpg|jpeg

Here the domain IS the folder, so no transform is applied later.  Images are converted to
grayscale (one channel, like the built-in sources) and brought to one square size, the smaller
side of the first image found, by a centre crop then a resize, so aspect ratios are not distorted.
Each domain's images are split into train and test pools by a seeded permutation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ecogen.data.pools import ImagePool, SourceImages

log = logging.getLogger("ecogen.data")

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _load_square(path: Path, side: int | None) -> np.ndarray:
    """Grey uint8 (side, side); ``side=None`` keeps the smaller side of this image."""
    with Image.open(path) as img:
        grey = img.convert("L")
    w, h = grey.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    square = grey.crop((left, top, left + s, top + s))
    if side is not None and s != side:
        square = square.resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(square, dtype=np.uint8)


def load_imagefolder(
    root: Path | str, domains: list[str], seed: int, test_fraction: float = 0.2
) -> SourceImages:
    """All images of ``domains`` under ``root``; ``ImagePool.domain`` says which folder each came from."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"imagefolder root {root} does not exist or is not a folder")
    class_names: list[str] | None = None
    side: int | None = None
    rng = np.random.default_rng(seed)
    train: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    test: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for d, domain in enumerate(domains):
        folder = root / domain
        if not folder.is_dir():
            raise FileNotFoundError(
                f"domain folder {folder} not found; {root} holds {_subfolders(root) or 'no folders'}"
            )
        classes = _subfolders(folder)
        if not classes:
            raise FileNotFoundError(f"{folder} has no class sub-folders (expected <domain>/<class>/<image>)")
        if class_names is None:
            class_names = classes
        elif classes != class_names:
            raise ValueError(
                f"class folders of domain {domain!r} {classes} differ from those of {domains[0]!r} "
                f"{class_names}: every domain must hold the same classes"
            )
        images: list[np.ndarray] = []
        labels: list[int] = []
        for c, name in enumerate(classes):
            for path in _image_files(folder / name):
                image = _load_square(path, side)
                side = side or image.shape[0]
                images.append(image)
                labels.append(c)
        if not images:
            raise FileNotFoundError(f"no {'/'.join(sorted(EXTENSIONS))} images under {folder}")
        log.info("imagefolder domain %s: %d images, %d classes", domain, len(images), len(classes))
        x, y = np.stack(images)[:, None], np.asarray(labels, dtype=np.int64)  # (N, 1, S, S), (N,)
        order = rng.permutation(len(y))
        n_test = int(round(test_fraction * len(y)))
        dom = np.full(len(y), d, dtype=np.int64)
        test.append((x[order[:n_test]], y[order[:n_test]], dom[:n_test]))
        train.append((x[order[n_test:]], y[order[n_test:]], dom[n_test:]))
    assert class_names is not None  # domains is non-empty (DataParams requires it)
    return SourceImages(name="imagefolder", train=_concat(train), test=_concat(test), class_names=class_names)


def _concat(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> ImagePool:
    x, y, d = (np.concatenate(a) for a in zip(*parts, strict=True))
    return ImagePool(x=torch.from_numpy(x), y=torch.from_numpy(y), domain=torch.from_numpy(d))
