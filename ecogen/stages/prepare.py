"""The prepare stage: base images → domains → partitions → ``data/`` (layout in ecogen.data.prepared).

Everything is written into a temporary sibling folder and swapped in by rename at the end, so a
failed or interrupted run leaves either the previous ``data/`` or none, never a half-written one
that later stages (or ``dvc add``) would take for real.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ecogen.config.params import Params, StreamParams
from ecogen.data.domains import apply_domain
from ecogen.data.partition import DomainIndices, Partition, PartitionSpec, label_skew, partition
from ecogen.data.pools import SourceImages
from ecogen.data.prepared import ORACLE_LABELS, UNLABELLED, DataMeta, Split, save_meta, save_split
from ecogen.data.seeding import derive_seed
from ecogen.data.sources import load_source
from ecogen.stages.result import StageResult
from ecogen.stream import ingest
from ecogen.stream.increments import StreamState
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.data")


def prepare(params: Params, ws: Workspace) -> StageResult:
    """Load ``params.data.source``, partition it, write ``ws.data``; counts and skew as metrics."""
    spec = PartitionSpec.from_params(params)
    source = load_source(params.data, seed=derive_seed(params.seed, "source"))
    log.info(
        "source %s: %d train / %d test images of %d×%d, %d classes",
        source.name,
        len(source.train),
        len(source.test),
        source.image_size,
        source.image_size,
        len(source.class_names),
    )
    part = partition(  # the train and test images split into the public pool and every domain's splits
        source.train.y.numpy(),
        source.test.y.numpy(),
        len(source.class_names),
        spec,
        seed=derive_seed(params.seed, "partition"),
        train_domain=None if source.train.domain is None else source.train.domain.numpy(),
        test_domain=None if source.test.domain is None else source.test.domain.numpy(),
    )
    skew = label_skew(
        [source.train.y[c.index].numpy() for dom in part.domains for c in dom.clusters],
        len(source.class_names),
    )
    transforms = params.data.transforms
    stream = params.stream if params.stream.increments else None
    tests = None if stream is None else _stream_tests(source, part, spec, stream, params.seed)
    counts = _write_atomically(
        ws.data, lambda tmp: _write(tmp, source, part, params.seed, spec, transforms, stream, tests)
    )
    log.info("prepared data written to %s (label skew %.3f)", ws.data, skew)
    return StageResult(
        name="prepare",
        metrics={  # images per kind of split (from ``_write``'s counts) and the clients' label skew
            "images_public": counts["public"],
            "images_test": sum(v for k, v in counts.items() if k.endswith("/test")),
            "images_edge": sum(v for k, v in counts.items() if k.endswith("/edge")),
            "images_client": sum(v for k, v in counts.items() if "/cluster_" in k),
            "images_client_labelled": counts["labelled"],
            "label_skew": skew,
        },
        params={
            "source": source.name,
            "image_size": source.image_size,
            "num_classes": len(source.class_names),
        },
    )


def _stream_tests(
    source: SourceImages, part: Partition, spec: PartitionSpec, stream: StreamParams, seed: int
) -> list[np.ndarray]:
    """Per domain, the test-pool indices of the stream's increment test slices (none a split uses)."""
    used = np.concatenate([dom.test for dom in part.domains])
    test_domain = None if source.test.domain is None else source.test.domain.numpy()
    tests_seed = derive_seed(seed, "stream", "tests")
    tests = ingest.draw_tests(used, len(source.test), len(spec.domains), stream, tests_seed, test_domain)
    log.info(
        "stream: increment %d of %d taken in%s",
        ingest.taken(stream) - 1,
        stream.increments,
        f" (shifted by {stream.shift} from increment {stream.shift_at})" if stream.shift_at else "",
    )
    return tests


def _transform(
    source: SourceImages, domain: str, x: Tensor, seed: int, transforms: Mapping[str, str]
) -> Tensor:
    """A built-in source's domain is a transform of its images; a folder domain already is its
    style, so it is transformed only where ``data.transforms`` names a transform for it."""
    if not source.domains_are_folders:
        return apply_domain(domain, x, seed)
    return apply_domain(transforms[domain], x, seed) if domain in transforms else x.clone()


def _domain_splits(
    source: SourceImages, dom: DomainIndices, d: int, seed: int, transforms: Mapping[str, str]
) -> dict[str, Split]:
    """Test, edge and cluster splits of domain number ``d``, styled and with hidden labels masked."""
    train, test = source.train, source.test

    def styled(x: Tensor, split: str) -> Tensor:
        # One seed per (domain, split), so noise on the test set is not a copy of the edge set's.
        return _transform(source, dom.name, x, derive_seed(seed, "domain", d, split), transforms)

    test_idx, edge_idx = torch.from_numpy(dom.test), torch.from_numpy(dom.edge)
    splits = {
        "test": Split(styled(test.x[test_idx], "test"), test.y[test_idx].clone()),
        "edge": Split(styled(train.x[edge_idx], "edge"), train.y[edge_idx].clone()),
    }
    for k, cluster in enumerate(dom.clusters):
        idx = torch.from_numpy(cluster.index)
        y = train.y[idx].clone()
        y[~torch.from_numpy(cluster.labelled)] = UNLABELLED  # hidden on disk, not just in memory
        splits[f"cluster_{k}"] = Split(styled(train.x[idx], f"cluster_{k}"), y)
    return splits


def _write(
    root: Path,
    source: SourceImages,
    part: Partition,
    seed: int,
    spec: PartitionSpec,
    transforms: Mapping[str, str],
    stream: StreamParams | None = None,
    stream_tests: list[np.ndarray] | None = None,
) -> dict[str, int]:
    """Write every split under ``root``; returns split name → number of images (and ``labelled``:
    the clients' labelled images).  A ``stream`` writes the increments taken in so far and each
    one's test slice (``stream_tests``: test-pool indices per domain, :func:`ingest.draw_tests`)."""
    counts: dict[str, int] = {"labelled": 0}
    state: StreamState | None = None

    def keep(split: Split, name: str) -> None:
        save_split(split, root / f"{name}.pt")
        counts[name] = len(split)

    for d, dom in enumerate(part.domains):
        splits = _domain_splits(source, dom, d, seed, transforms)
        # every label of every cluster, hidden ones included (for the centralized oracle)
        oracle = {
            f"cluster_{k}": source.train.y[torch.from_numpy(c.index)].clone()
            for k, c in enumerate(dom.clusters)
        }
        if stream is not None and stream_tests is not None:
            splits, state = ingest.cut(splits, stream, derive_seed(seed, "stream", d))
            oracle = {k: v[: len(splits[k])].clone() for k, v in oracle.items()}
            slices = _increment_tests(source, dom, d, seed, transforms, stream, stream_tests[d])
            for j, split in enumerate(slices):
                keep(split, f"{dom.name}/increments/{j}/test")
        for name, split in splits.items():
            keep(split, f"{dom.name}/{name}")
            if name.startswith("cluster_"):
                counts["labelled"] += int(split.labelled.sum())
        torch.save(oracle, root / dom.name / ORACLE_LABELS)
        log.info(
            "domain %s: test %d, edge %d, %d clusters written",
            dom.name,
            len(dom.test),
            len(dom.edge),
            len(dom.clusters),
        )
    public = _public_pool(source, part, spec.domains, seed, transforms)
    torch.save({"x": public.contiguous()}, root / "public.pt")
    counts["public"] = len(public)
    _write_meta(root, source, spec, counts, state)
    return counts


def _increment_tests(
    source: SourceImages,
    dom: DomainIndices,
    d: int,
    seed: int,
    transforms: Mapping[str, str],
    stream: StreamParams,
    test_rows: np.ndarray,
) -> list[Split]:
    """The test slices of the stream's increments for domain number ``d``: its ``test_rows`` of the
    source's test pool, styled."""
    idx = torch.from_numpy(test_rows)
    styled = _transform(
        source, dom.name, source.test.x[idx], derive_seed(seed, "domain", d, "increments"), transforms
    )
    return ingest.increment_tests(
        Split(styled, source.test.y[idx].clone()), stream, derive_seed(seed, "stream", d, "tests")
    )


def _public_pool(
    source: SourceImages, part: Partition, domains: tuple[str, ...], seed: int, transforms: Mapping[str, str]
) -> Tensor:
    """The public pool's images, each styled as the domain it was drawn for."""
    public = source.train.x[torch.from_numpy(part.public)]  # (P, C, H, W)
    for d, name in enumerate(domains):
        rows = torch.from_numpy(np.flatnonzero(part.public_domain == d))
        if len(rows):
            public[rows] = _transform(source, name, public[rows], derive_seed(seed, "public", d), transforms)
    return public


def _write_meta(
    root: Path, source: SourceImages, spec: PartitionSpec, counts: dict[str, int], state: StreamState | None
) -> None:
    """The data's description (source, domains, counts, stream state) to ``root``."""
    save_meta(
        DataMeta(
            source=source.name,
            image_size=source.image_size,
            channels=source.channels,
            num_classes=len(source.class_names),
            class_names=list(source.class_names),
            domains=list(spec.domains),
            clusters=spec.clusters,
            counts=dict(sorted((k, v) for k, v in counts.items() if k != "labelled")),
            stream=asdict(state) if state is not None else None,
        ),
        root,
    )


def _write_atomically(target: Path, write: Callable[[Path], dict[str, int]]) -> dict[str, int]:
    """Run ``write`` into a fresh sibling of ``target``, then swap it in by rename."""
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} is a file, not a data folder: move it away, nothing was written")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        counts = write(tmp)
        old = None
        if target.exists():
            old = target.with_name(f"{tmp.name}.old")
            target.rename(old)
        try:
            tmp.rename(target)
        except BaseException:
            if old is not None:
                old.rename(target)  # put the previous data back rather than leave none
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return counts
