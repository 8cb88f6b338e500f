"""Who holds which image: seeded index sets over the train and test pools of a source.

For every domain (one per edge server): a held-out test set from the test pool, a small labelled
set for the edge, and ``clusters`` client clusters.  Client data is label-skewed the usual way in
federated learning (Hsu et al., 2019, "Measuring the effects of non-identical data distribution"):
each cluster's class proportions are drawn from Dirichlet(α), so a small α gives clusters that
hold few classes.  Within a cluster a fraction λ keeps its labels (semi-supervised clients).  The
cloud's public pool takes unlabelled images from what is left, each assigned one of the domains,
since public data comes in every style.

Every index set is disjoint from every other, so no image is both public and private, or in two
clients.  Pure functions over label arrays: nothing here touches images or disk, and all
randomness comes from one ``numpy.random.Generator`` seeded by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecogen.config.params import Params
from ecogen.data.errors import DataError


@dataclass(frozen=True)
class PartitionSpec:
    """How many images go where; built from ``params.data`` and ``params.hfsl.clusters``."""

    domains: tuple[str, ...]
    test_per_domain: int
    public_pool: int
    edge_labelled: int
    clusters: int  # client clusters per domain
    samples_per_cluster: int
    dirichlet_alpha: float
    labelled_fraction: float  # λ

    @classmethod
    def from_params(cls, params: Params) -> PartitionSpec:
        d = params.data
        return cls(
            domains=tuple(d.domains),
            test_per_domain=d.test_per_domain,
            public_pool=d.public_pool,
            edge_labelled=d.edge_labelled,
            clusters=params.hfsl.clusters,
            samples_per_cluster=d.samples_per_cluster,
            dirichlet_alpha=d.dirichlet_alpha,
            labelled_fraction=d.labelled_fraction,
        )

    @property
    def train_per_domain(self) -> int:
        return self.edge_labelled + self.clusters * self.samples_per_cluster

    @property
    def labelled_per_cluster(self) -> int:
        """round(λ·n), halves rounded up (Python's round() would send 2.5 to 2)."""
        return min(
            self.samples_per_cluster, math.floor(self.labelled_fraction * self.samples_per_cluster + 0.5)
        )


@dataclass(frozen=True)
class ClusterIndices:
    index: np.ndarray  # int64 (n,), into the train pool
    labelled: np.ndarray  # bool (n,): whose label the cluster may see


@dataclass(frozen=True)
class DomainIndices:
    name: str
    test: np.ndarray  # int64, into the test pool
    edge: np.ndarray  # int64, into the train pool, all labelled
    clusters: list[ClusterIndices]


@dataclass(frozen=True)
class Partition:
    public: np.ndarray  # int64, into the train pool, no labels
    public_domain: np.ndarray  # int64, index into ``domains``: the style each public image gets
    domains: list[DomainIndices]


def check_sizes(
    spec: PartitionSpec,
    train_size: int,
    test_size: int,
    train_domain: np.ndarray | None,
    test_domain: np.ndarray | None,
) -> None:
    """Raise DataError, saying what is needed against what is there, if the pools are too small."""
    n_dom, per = len(spec.domains), spec.train_per_domain
    need_train = spec.public_pool + n_dom * per
    problems = []
    if need_train > train_size:
        problems.append(
            f"train pool: {need_train} images needed (public_pool {spec.public_pool} + {n_dom} domains × "
            f"(edge_labelled {spec.edge_labelled} + {spec.clusters} clusters × samples_per_cluster "
            f"{spec.samples_per_cluster})), {train_size} available"
        )
    if test_domain is None and n_dom * spec.test_per_domain > test_size:
        problems.append(
            f"test pool: {n_dom * spec.test_per_domain} images needed ({n_dom} domains × test_per_domain "
            f"{spec.test_per_domain}), {test_size} available"
        )
    for d, name in enumerate(spec.domains):
        if train_domain is not None and (have := int((train_domain == d).sum())) < per:
            problems.append(f"domain {name!r} train pool: {per} images needed, {have} available")
        if test_domain is not None and (have := int((test_domain == d).sum())) < spec.test_per_domain:
            problems.append(
                f"domain {name!r} test pool: {spec.test_per_domain} images needed, {have} available"
            )
    if problems:
        raise DataError("not enough images for the requested partition: " + "; ".join(problems))


def dirichlet_sample(
    pool: np.ndarray, labels: np.ndarray, n: int, num_classes: int, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """``n`` distinct indices from ``pool`` whose classes follow proportions drawn from Dir(α).

    ``labels[i]`` is the class of ``pool[i]``.  Where a class runs out, its shortfall goes to the
    classes with images left, the ones the draw favoured first, so the cluster still gets ``n``
    images and stays as skewed as the pool allows.  Requires ``len(pool) >= n``.
    """
    by_class = [pool[labels == c] for c in range(num_classes)]
    caps = np.array([len(b) for b in by_class])
    p = rng.dirichlet(np.full(num_classes, alpha))
    if not np.all(np.isfinite(p)) or p.sum() <= 0:  # a very small α can underflow to all zeros
        p = np.eye(num_classes)[rng.integers(num_classes)]
    counts = np.minimum(rng.multinomial(n, p / p.sum()), caps)
    for c in np.argsort(-p, kind="stable"):
        short = n - int(counts.sum())
        if short == 0:
            break
        counts[c] += min(short, caps[c] - counts[c])
    chosen = [rng.choice(by_class[c], size=int(counts[c]), replace=False) for c in range(num_classes)]
    return rng.permutation(np.concatenate(chosen)).astype(np.int64)  # no class-sorted order on disk


def partition(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    spec: PartitionSpec,
    seed: int,
    *,
    train_domain: np.ndarray | None = None,
    test_domain: np.ndarray | None = None,
) -> Partition:
    """Split the pools as ``spec`` asks; the same inputs and ``seed`` give the same partition.

    ``train_domain``/``test_domain`` (domain index per image) are for sources whose domains are
    folders of real images: domain ``d`` then draws only from its own images, and public images
    keep their own domain.  Without them every domain draws from the shared pools.
    """
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    check_sizes(spec, len(train_labels), len(test_labels), train_domain, test_domain)
    rng = np.random.default_rng(seed)
    train_free = np.ones(len(train_labels), dtype=bool)
    test_free = np.ones(len(test_labels), dtype=bool)

    def free(mask: np.ndarray, domain_of: np.ndarray | None, d: int) -> np.ndarray:
        return np.flatnonzero(mask if domain_of is None else mask & (domain_of == d))

    domains = []
    for d, name in enumerate(spec.domains):
        test = rng.choice(free(test_free, test_domain, d), size=spec.test_per_domain, replace=False)
        test_free[test] = False
        edge = rng.choice(free(train_free, train_domain, d), size=spec.edge_labelled, replace=False)
        train_free[edge] = False
        clusters = []
        for _ in range(spec.clusters):
            pool = free(train_free, train_domain, d)
            index = dirichlet_sample(
                pool, train_labels[pool], spec.samples_per_cluster, num_classes, spec.dirichlet_alpha, rng
            )
            train_free[index] = False
            mask = np.zeros(spec.samples_per_cluster, dtype=bool)  # labelled_per_cluster True, at random
            mask[rng.choice(spec.samples_per_cluster, size=spec.labelled_per_cluster, replace=False)] = True
            clusters.append(ClusterIndices(index=index, labelled=mask))
        domains.append(DomainIndices(name, test.astype(np.int64), edge.astype(np.int64), clusters))

    public = rng.choice(np.flatnonzero(train_free), size=spec.public_pool, replace=False).astype(np.int64)
    if train_domain is None:
        public_domain = rng.integers(len(spec.domains), size=spec.public_pool).astype(np.int64)
    else:
        public_domain = np.asarray(train_domain, dtype=np.int64)[public]
    return Partition(public=public, public_domain=public_domain, domains=domains)


def label_skew(cluster_labels: Sequence[np.ndarray], num_classes: int) -> float:
    """Mean total-variation distance between each cluster's label histogram and uniform.

    0 for perfectly balanced clusters; approaches 1 - 1/C when every cluster holds one class.
    """
    if not cluster_labels:
        return 0.0
    uniform = np.full(num_classes, 1.0 / num_classes)
    dists = []
    for labels in cluster_labels:
        hist = np.bincount(np.asarray(labels), minlength=num_classes)[:num_classes] / max(len(labels), 1)
        dists.append(0.5 * float(np.abs(hist - uniform).sum()))
    return float(np.mean(dists))
