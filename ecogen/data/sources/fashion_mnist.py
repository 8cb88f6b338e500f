"""Fashion-MNIST (Xiao et al., 2017): 70,000 grey 28×28 images of 10 clothing classes.

Read from the standard IDX files.  Where they come from, in order: a configured root; the Debian
package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); torchvision's download,
only where torchvision is installed and a network is reachable.  The project's own machines have
no network, so the first two must be enough there; torchvision is imported lazily and optional.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ecogen.data.errors import DataError, DataNotFound
from ecogen.data.idx import read_idx
from ecogen.data.pools import ImagePool, SourceImages

if TYPE_CHECKING:
    from ecogen.config.params import DataParams

SIDE = 28

log = logging.getLogger("ecogen.data")

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
SYSTEM_ROOT = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DOWNLOAD_ROOT = Path("~/.cache/ecogen/fashion-mnist")
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):  # torchvision keeps both the archive and the extracted file
        if (folder / name).is_file():
            return folder / name
    return None


def _complete(folder: Path) -> dict[str, Path] | None:
    found = {key: _find(folder, stem) for key, stem in FILES.items()}
    if any(p is None for p in found.values()):
        return None
    return {key: p for key, p in found.items() if p is not None}


def _download(root: Path) -> Path:
    """Fetch the IDX files with torchvision; returns the folder that holds them."""
    import torchvision  # optional: the `vision` extra

    for train in (True, False):
        torchvision.datasets.FashionMNIST(root=str(root), train=train, download=True)
    return root / "FashionMNIST" / "raw"


def _pool(images: np.ndarray, labels: np.ndarray, path: Path) -> ImagePool:
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{path.parent}: images {images.shape} and labels {labels.shape} do not match")
    if labels.size and not (0 <= labels.min() and labels.max() < len(CLASS_NAMES)):
        raise DataError(f"{path.parent}: labels outside [0, {len(CLASS_NAMES)})")
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).unsqueeze(1)  # (N, 1, 28, 28)
    return ImagePool(x=x, y=torch.from_numpy(labels.astype(np.int64)))


def locate_fashion_mnist(
    root: Path | str | None = None, download_root: Path | str | None = None
) -> dict[str, Path]:
    """The four IDX files: from ``root`` (else the system copy), else a torchvision download.

    With ``root`` given the system copy is not searched and ``root`` is the download target, so a
    configured root is never silently replaced by another copy of the data.
    """
    folder = Path(root).expanduser() if root is not None else SYSTEM_ROOT
    target = folder if root is not None else Path(download_root or DEFAULT_DOWNLOAD_ROOT).expanduser()
    tried = [folder, target / "FashionMNIST" / "raw"]  # the second is where torchvision puts them
    for candidate in tried:
        if (files := _complete(candidate)) is not None:
            return files
    try:
        log.info("Fashion-MNIST not found in %s; downloading with torchvision to %s", folder, target)
        files = _complete(_download(target))
        reason = "the torchvision download left incomplete files"
    except ImportError:
        files, reason = None, "torchvision is not installed (pip install 'ecogen[vision]')"
    except Exception as err:  # no network, server down: say so rather than show a stack of URLs
        files, reason = None, f"the torchvision download failed ({err})"
    if files is None:
        wanted = ", ".join(f"{stem}.gz" for stem in FILES.values())
        raise DataNotFound(
            f"Fashion-MNIST IDX files ({wanted}) not found in {' or '.join(map(str, tried))}, and {reason}. "
            "Set data.root to a folder holding them."
        )
    return files


def load_fashion_mnist(
    root: Path | str | None = None, download_root: Path | str | None = None
) -> SourceImages:
    """60,000 train-pool and 10,000 test-pool images (see :func:`locate_fashion_mnist`)."""
    files = locate_fashion_mnist(root, download_root)
    log.info("loading Fashion-MNIST from %s", files["train_x"].parent)
    train = _pool(read_idx(files["train_x"]), read_idx(files["train_y"]), files["train_x"])
    test = _pool(read_idx(files["test_x"]), read_idx(files["test_y"]), files["test_x"])
    return SourceImages(name="fashion_mnist", train=train, test=test, class_names=list(CLASS_NAMES))


def load(data: DataParams, seed: int) -> SourceImages:
    return load_fashion_mnist(data.root)
