"""Image sources: digits, Fashion-MNIST from IDX files, and a user's ImageFolder tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ecogen.config.params import DataParams
from ecogen.data.idx import write_idx
from ecogen.data.sources import fashion_mnist, load_source
from ecogen.data.sources.digits import load_digits_source
from ecogen.data.sources.fashion_mnist import CLASS_NAMES, FILES, load_fashion_mnist
from ecogen.data.sources.imagefolder import load_imagefolder


def test_digits_shape_and_split():
    src = load_digits_source(seed=0)
    assert len(src.train) + len(src.test) == 1797
    assert len(src.test) == round(0.2 * 1797)
    assert src.train.x.shape[1:] == (1, 8, 8) and src.train.x.dtype == torch.uint8
    assert src.train.y.dtype == torch.int64 and set(src.train.y.tolist()) == set(range(10))
    assert int(src.train.x.max()) == 255 and int(src.train.x.min()) == 0
    assert src.class_names == [str(i) for i in range(10)]
    assert not src.domains_are_folders
    again, other = load_digits_source(seed=0), load_digits_source(seed=1)
    assert torch.equal(again.test.x, src.test.x)
    assert not torch.equal(other.test.y, src.test.y)


def _write_fake_fashion(folder: Path, n_train: int = 12, n_test: int = 5) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        write_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), folder / f"{FILES[split + '_x']}.gz")
        write_idx(rng.integers(0, 10, n, dtype=np.uint8), folder / f"{FILES[split + '_y']}.gz")


def test_fashion_mnist_from_root(tmp_path):
    _write_fake_fashion(tmp_path)
    src = load_source(DataParams(source="fashion_mnist", root=str(tmp_path)), seed=0)
    assert src.name == "fashion_mnist" and src.class_names == CLASS_NAMES
    assert src.train.x.shape == (12, 1, 28, 28) and src.test.x.shape == (5, 1, 28, 28)
    assert src.train.y.dtype == torch.int64


def test_fashion_mnist_missing_names_the_paths(tmp_path, monkeypatch):
    def no_torchvision(root):
        raise ImportError("no torchvision")

    monkeypatch.setattr(fashion_mnist, "_download", no_torchvision)
    with pytest.raises(FileNotFoundError, match="torchvision is not installed") as err:
        load_fashion_mnist(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def test_fashion_mnist_real_copy():
    if fashion_mnist._complete(fashion_mnist.SYSTEM_ROOT) is None:
        pytest.skip(f"no Fashion-MNIST in {fashion_mnist.SYSTEM_ROOT}")
    src = load_fashion_mnist()
    assert src.train.x.shape == (60000, 1, 28, 28) and src.test.x.shape == (10000, 1, 28, 28)
    for pool in (src.train, src.test):
        assert int(pool.y.min()) == 0 and int(pool.y.max()) == 9
        assert torch.bincount(pool.y).min() > 0


def _png(path: Path, size: tuple[int, int], value: int, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, value, value)
    Image.new(mode, size, colour).save(path)


def _tree(root: Path, domains=("a", "b"), classes=("cat", "dog"), per_class: int = 5) -> None:
    for domain in domains:
        for c, name in enumerate(classes):
            for i in range(per_class):
                # one odd first image (10×10); the others are 16×12: the most common side is 12
                size = (10, 10) if (domain, c, i) == (domains[0], 0, 0) else (16, 12)
                _png(root / domain / name / f"{i}.png", size, 40 * c + i, mode="RGB" if i % 2 else "L")


def test_imagefolder_loads_per_domain(tmp_path, caplog):
    _tree(tmp_path)
    with caplog.at_level("WARNING", logger="ecogen.data"):
        src = load_imagefolder(tmp_path, ["a", "b"], seed=0)
    assert src.class_names == ["cat", "dog"] and src.domains_are_folders
    # the most common shorter side, not the first image's; the policy is said once, with counts
    assert src.train.x.shape[1:] == (1, 12, 12) and src.train.x.dtype == torch.uint8
    assert (
        "20 images brought to 12×12 grey: 1 resized, 19 centre-cropped to a square, 8 converted"
        in caplog.text
    )
    assert load_imagefolder(tmp_path, ["a"], seed=0, image_size=8).train.x.shape[1:] == (1, 8, 8)
    assert len(src.train) + len(src.test) == 20 and len(src.test) == 4  # 20% of 10, per domain
    assert src.train.domain is not None and src.test.domain is not None
    assert torch.bincount(src.test.domain).tolist() == [2, 2]
    # a flat grey image stays flat at its grey level whatever the resize
    first = src.train.x[src.train.y == 1][0]
    assert int(first.min()) == int(first.max()) >= 40


def test_imagefolder_class_mismatch(tmp_path):
    _tree(tmp_path, domains=("a",), classes=("cat", "dog"))
    _tree(tmp_path, domains=("b",), classes=("cat", "emu"))
    with pytest.raises(ValueError, match="same classes"):
        load_imagefolder(tmp_path, ["a", "b"], seed=0)


def test_imagefolder_missing_domain_and_empty(tmp_path):
    _tree(tmp_path, domains=("a",))
    with pytest.raises(FileNotFoundError, match="domain folder"):
        load_imagefolder(tmp_path, ["a", "zzz"], seed=0)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no .*images"):
        load_imagefolder(tmp_path, ["empty"], seed=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_imagefolder(tmp_path / "nope", ["a"], seed=0)


def test_imagefolder_needs_root():
    with pytest.raises(ValueError, match="data.root"):
        DataParams(source="imagefolder", domains=["clean"])


def test_imagefolder_domains_are_the_users_folders_with_optional_transforms(tmp_path, caplog):
    _tree(tmp_path, domains=("clean", "rotated"))
    (tmp_path / "clean" / "emu").mkdir()
    (tmp_path / "rotated" / "emu").mkdir()
    data = DataParams(
        source="imagefolder",
        root=str(tmp_path),
        domains=["clean", "rotated"],
        transforms={"rotated": "rotate90"},
    )
    with caplog.at_level("WARNING", logger="ecogen.data"):
        src = load_source(data, seed=0)
    assert src.class_names == ["cat", "dog", "emu"]
    assert "class 'emu' of domain 'clean' holds no images" in caplog.text
    with pytest.raises(ValueError, match="transforms of its images"):
        DataParams(domains=["clean"])  # fashion_mnist's domains are its transforms
    with pytest.raises(ValueError, match="folder names"):
        DataParams(source="imagefolder", root=".", domains=["../up"])
    with pytest.raises(ValueError, match="not in data.domains"):
        DataParams(source="imagefolder", root=".", domains=["a"], transforms={"b": "invert"})


def test_damaged_files_are_data_errors_naming_the_file(tmp_path):
    from ecogen.data.errors import DataError
    from ecogen.data.idx import read_idx, write_idx

    _tree(tmp_path, domains=("a",))
    broken = tmp_path / "a" / "cat" / "3.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"{broken}: not a readable image"):
        load_imagefolder(tmp_path, ["a"], seed=0)
    idx = tmp_path / "x-idx1-ubyte.gz"
    write_idx(np.arange(1000, dtype=np.uint8), idx)
    idx.write_bytes(idx.read_bytes()[:20])
    with pytest.raises(DataError, match=f"{idx}: the compressed file is cut short"):
        read_idx(idx)
    idx.write_bytes(b"plain")
    with pytest.raises(DataError, match=f"{idx}: the compressed file is not readable"):
        read_idx(idx)
