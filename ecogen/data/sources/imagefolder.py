"""A user's own images: one folder per domain, each in ImageFolder layout.

    <root>/<domain>/<class>/<image>.png|jpg|jpeg

The domain names are the user's folder names (``data.domains``), and a domain IS its folder: no
transform is applied later unless ``data.transforms`` names one for it.  Every domain must hold
the same class folders.

Size and mode policy: every image is converted to 8-bit grey (one channel, like the built-in
sources) and brought to one square side — ``data.image_size``, or else the most common shorter
side among all the images — by a centre crop to a square, then a bilinear resize, so aspect
ratios are not distorted.  How many images were converted from colour, cropped or resized is
logged as a warning, and so is a class folder without images.  Each domain's images are split
into train and test pools by a seeded permutation.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ecogen.data.errors import DataError, DataNotFound
from ecogen.data.pools import ImagePool, SourceImages

if TYPE_CHECKING:
    from ecogen.config.params import DataParams

SIDE = None  # the images' own: data.image_size, or the most common shorter side among them

log = logging.getLogger("ecogen.data")

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _open(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path}: not a readable image ({exc}); remove or replace it") from exc


def _square(img: Image.Image, side: int) -> np.ndarray:
    """Grey uint8 (side, side): centre crop to a square, then resize."""
    grey = img.convert("L")
    w, h = grey.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    square = grey.crop((left, top, left + s, top + s))
    if s != side:
        square = square.resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(square, dtype=np.uint8)


def _files(root: Path, domains: list[str]) -> tuple[list[str], dict[str, list[list[Path]]]]:
    """The class names and, per domain, each class's image files (checked for the layout)."""
    class_names: list[str] | None = None
    files: dict[str, list[list[Path]]] = {}
    for domain in domains:
        folder = root / domain
        if not folder.is_dir():
            raise DataNotFound(
                f"domain folder {folder} not found; {root} holds {_subfolders(root) or 'no folders'}"
            )
        classes = _subfolders(folder)
        if not classes:
            raise DataNotFound(f"{folder} has no class sub-folders (expected <domain>/<class>/<image>)")
        if class_names is None:
            class_names = classes
        elif classes != class_names:
            raise DataError(
                f"class folders of domain {domain!r} {classes} differ from those of {domains[0]!r} "
                f"{class_names}: every domain must hold the same classes"
            )
        files[domain] = [_image_files(folder / name) for name in classes]
        if not any(files[domain]):
            raise DataNotFound(f"no {'/'.join(sorted(EXTENSIONS))} images under {folder}")
        for name, found in zip(classes, files[domain], strict=True):
            if not found:
                log.warning("imagefolder: class %r of domain %r holds no images", name, domain)
    assert class_names is not None  # domains is non-empty (DataParams requires it)
    return class_names, files


def load_imagefolder(
    root: Path | str, domains: list[str], seed: int, test_fraction: float = 0.2, image_size: int | None = None
) -> SourceImages:
    """All images of ``domains`` under ``root``; ``ImagePool.domain`` says which folder each came from."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataNotFound(f"imagefolder root {root} does not exist or is not a folder; set data.root")
    class_names, files = _files(root, domains)
    opened = {d: [[_open(p) for p in found] for found in per_class] for d, per_class in files.items()}
    sides = Counter(min(img.size) for per_class in opened.values() for found in per_class for img in found)
    side = image_size or sides.most_common(1)[0][0]
    reshaped = sum(n for s, n in sides.items() if s != side)
    cropped = sum(1 for pc in opened.values() for f in pc for img in f if img.size[0] != img.size[1])
    colour = sum(
        1 for pc in opened.values() for f in pc for img in f if img.mode not in ("L", "1", "I;16", "I")
    )
    total = sum(sides.values())
    if reshaped or cropped or colour:
        log.warning(
            "imagefolder: %d images brought to %d×%d grey: %d resized, %d centre-cropped to a square, "
            "%d converted from colour (data.image_size sets the side)",
            total, side, side, reshaped, cropped, colour,
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    train: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    test: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for d, domain in enumerate(domains):
        images = [_square(img, side) for found in opened[domain] for img in found]
        labels = [c for c, found in enumerate(opened[domain]) for _ in found]
        log.info("imagefolder domain %s: %d images, %d classes", domain, len(images), len(class_names))
        x, y = np.stack(images)[:, None], np.asarray(labels, dtype=np.int64)  # (N, 1, S, S), (N,)
        order = rng.permutation(len(y))
        n_test = int(round(test_fraction * len(y)))
        dom = np.full(len(y), d, dtype=np.int64)
        test.append((x[order[:n_test]], y[order[:n_test]], dom[:n_test]))
        train.append((x[order[n_test:]], y[order[n_test:]], dom[n_test:]))
    return SourceImages(name="imagefolder", train=_concat(train), test=_concat(test), class_names=class_names)


def _concat(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> ImagePool:
    x, y, d = (np.concatenate(a) for a in zip(*parts, strict=True))
    return ImagePool(x=torch.from_numpy(x), y=torch.from_numpy(y), domain=torch.from_numpy(d))


def load(data: DataParams, seed: int) -> SourceImages:
    assert data.root is not None  # DataParams requires it
    return load_imagefolder(data.root, list(data.domains), seed, image_size=data.image_size)
