"""The on-disk layout of prepared data (``data/``), written by the prepare stage and read by all others.

    data/meta.json                       DataMeta
    data/public.pt                       {"x": uint8 (N, C, H, W)}            cloud pool, no labels
    data/<domain>/test.pt                {"x", "y"}                           held-out test set
    data/<domain>/edge.pt                {"x", "y"}                           edge's labelled set
    data/<domain>/cluster_<k>.pt         {"x", "y"}  y = -1 where unlabelled  client cluster k
    data/<domain>/oracle_labels.pt       {"cluster_<k>": int64 (N,)}          every client label
    data/<domain>/increments/<j>/test.pt {"x", "y"}                           a stream's increment j, held out

In a stream (``stream.increments``), edge and cluster splits hold the increments taken in so far,
in order; ``meta.json``'s ``stream`` says where each increment's rows are.

Unlabelled client samples carry ``y = -1`` in their split, so no stage can peek at labels it
should not have.  The full labels sit in a separate file that only the centralized oracle
baseline reads (it is defined as the learner that has every label).  Images stay uint8 on disk
(small, exact); :func:`to_float` maps them into [-1, 1].

A cluster's split can also be handed round unread, as a :class:`SplitFile`: with many clusters
per edge and few taking part in a round (``hfsl.clusters_per_round``), a cluster's images are
read only in the rounds it takes part in, and dropped after.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from ecogen.data.errors import DataError, DataNotFound
from ecogen.stream.increments import StreamState

UNLABELLED = -1
ORACLE_LABELS = "oracle_labels.pt"


@dataclass(frozen=True)
class DataMeta:
    source: str
    image_size: int
    channels: int
    num_classes: int
    class_names: list[str]
    domains: list[str]
    clusters: int  # client clusters per edge
    counts: dict[str, int]  # split name → number of images, for the record
    # A stream's increments in this data (ecogen.stream.increments.StreamState's fields); None:
    # all data at once
    stream: dict[str, Any] | None = None


@dataclass
class Split:
    x: Tensor  # uint8 (N, C, H, W)
    y: Tensor  # int64 (N,), UNLABELLED where no label is known
    # bool (N,): the labels the owner holds, where y also carries pseudo-labels that train as
    # labels (ecogen/training/feature_labels.py); None: every label in y is held
    held: Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def labelled(self) -> Tensor:  # bool (N,): trains with a label
        return self.y != UNLABELLED

    @property
    def held_labels(self) -> Tensor:  # bool (N,): a label the owner holds, not a pseudo-label
        return self.labelled if self.held is None else self.held

    def load(self) -> Split:  # already in memory (see SplitSource)
        return self

    def labels(self) -> Tensor:
        return self.y


class SplitSource(Protocol):
    """A split that may not have been read yet: its size, its labels (y, no image) and, read
    when asked for, its images.  A :class:`Split` is one already in memory."""

    def __len__(self) -> int: ...

    def load(self) -> Split: ...

    def labels(self) -> Tensor: ...


@dataclass(frozen=True)
class SplitFile:
    """A split on disk, read each time :meth:`load` is called (the caller keeps it as long as it
    needs it); :meth:`labels` maps the file and reads the labels only."""

    path: Path
    size: int | None = None  # images, when known without opening the file (meta.json's counts)

    def __len__(self) -> int:
        return self.size if self.size is not None else len(self.labels())

    def load(self) -> Split:
        return load_split(self.path)

    def labels(self) -> Tensor:
        # mmap: only the pages of y are read, not the images'
        return torch.load(self.path, weights_only=True, mmap=True)["y"].clone()


def to_float(x: Tensor) -> Tensor:
    """uint8 images → float in [-1, 1]."""
    return x.float().div(127.5).sub(1.0)


def save_split(split: Split, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"x": split.x.contiguous(), "y": split.y.contiguous()}, path)


def load_split(path: Path) -> Split:
    blob = torch.load(path, weights_only=True)
    return Split(blob["x"], blob["y"])


def save_meta(meta: DataMeta, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps(asdict(meta), indent=2) + "\n")


def load_meta(root: Path) -> DataMeta:
    path = root / "meta.json"
    if not path.exists():
        raise DataNotFound(f"{path} not found: run the prepare stage first")
    return DataMeta(**json.loads(path.read_text()))


class PreparedData:
    """Lazy reader over a prepared ``data/`` folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.meta = load_meta(self.root)

    def public(self) -> Tensor:
        return torch.load(self.root / "public.pt", weights_only=True)["x"]

    def test(self, domain: str) -> Split:
        return load_split(self.root / domain / "test.pt")

    def edge(self, domain: str) -> Split:
        return load_split(self.root / domain / "edge.pt")

    def cluster(self, domain: str, k: int) -> Split:
        return load_split(self.root / domain / f"cluster_{k}.pt")

    def clusters(self, domain: str, count: int | None = None) -> list[Split]:
        """The first ``count`` clusters (all of them by default)."""
        return [self.cluster(domain, k) for k in range(self._count(count))]

    def cluster_files(self, domain: str, count: int | None = None) -> list[SplitFile]:
        """The first ``count`` clusters (all of them by default), unread: each is read when loaded."""
        count = self._count(count)
        sizes = self.meta.counts
        return [
            SplitFile(self.root / domain / f"cluster_{k}.pt", sizes.get(f"{domain}/cluster_{k}"))
            for k in range(count)
        ]

    def _count(self, count: int | None) -> int:
        count = self.meta.clusters if count is None else count
        if count > self.meta.clusters:
            raise DataError(
                f"{count} clusters asked for but the prepared data has {self.meta.clusters}: "
                "rerun prepare with hfsl.clusters at least that large"
            )
        return count

    @property
    def stream(self) -> StreamState | None:
        return StreamState(**self.meta.stream) if self.meta.stream else None

    def increment_test(self, domain: str, increment: int) -> Split:
        """A stream's held-out test images of ``increment``, as they look in that increment."""
        return load_split(self.root / domain / "increments" / str(increment) / "test.pt")

    def oracle_labels(self, domain: str, k: int) -> Tensor:
        """Every label of cluster ``k``, hidden ones included — for the centralized oracle only."""
        return torch.load(self.root / domain / ORACLE_LABELS, weights_only=True)[f"cluster_{k}"]
