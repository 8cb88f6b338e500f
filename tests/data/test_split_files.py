"""Clusters handed round unread (``SplitFile``): read when loaded, labels without images, sizes from
meta.json."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecogen.data.errors import DataError
from ecogen.data.prepared import UNLABELLED, DataMeta, PreparedData, Split, SplitFile, save_meta, save_split


def _prepared(root: Path, sizes: list[int]) -> list[Split]:
    g = torch.Generator().manual_seed(0)
    splits = []
    for k, n in enumerate(sizes):
        y = torch.randint(0, 3, (n,), generator=g)
        y[n // 2 :] = UNLABELLED
        splits.append(Split(torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8), y))
        save_split(splits[-1], root / "dom" / f"cluster_{k}.pt")
    counts = {f"dom/cluster_{k}": n for k, n in enumerate(sizes)}
    save_meta(DataMeta("digits", 8, 1, 3, ["a", "b", "c"], ["dom"], len(sizes), counts), root)
    return splits


def test_cluster_files_are_the_clusters_read_when_loaded(tmp_path: Path) -> None:
    splits = _prepared(tmp_path, [6, 9, 4])
    data = PreparedData(tmp_path)
    files = data.cluster_files("dom")
    assert len(files) == 3 and len(data.cluster_files("dom", 2)) == 2
    for f, s, read in zip(files, splits, data.clusters("dom"), strict=True):
        loaded = f.load()
        assert torch.equal(loaded.x, s.x) and torch.equal(loaded.y, s.y) and torch.equal(read.x, loaded.x)
        assert torch.equal(f.labels(), s.y) and len(f) == len(s)
    files[0].path.unlink()
    assert len(files[0]) == 6  # meta.json's count: the file is not opened
    assert len(SplitFile(files[1].path)) == 9  # no count given: its labels tell
    with pytest.raises(DataError, match="prepared data has 3"):
        data.cluster_files("dom", 4)


def test_a_split_in_memory_is_its_own_source() -> None:
    s = Split(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.tensor([1, UNLABELLED]))
    assert s.load() is s and s.labels() is s.y
