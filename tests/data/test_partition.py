"""Partitions: disjoint, reproducible, skewed as α asks, labelled as λ asks, loud when too small."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from ecogen.data.partition import Partition, PartitionSpec, dirichlet_sample, label_skew, partition

C = 10
TRAIN = np.repeat(np.arange(C), 300)  # 3000 images, 300 per class
TEST = np.repeat(np.arange(C), 60)  # 600 images
SPEC = PartitionSpec(
    domains=("identity", "rotate90", "invert"),
    test_per_domain=50,
    public_pool=400,
    edge_labelled=30,
    clusters=3,
    samples_per_cluster=100,
    dirichlet_alpha=0.5,
    labelled_fraction=0.1,
)


def _part(spec: PartitionSpec = SPEC, seed: int = 0, **kw):
    return partition(TRAIN, TEST, C, spec, seed, **kw)


def _train_sets(p: Partition) -> dict[str, np.ndarray]:
    """Every train-pool index set by name (``public``, ``<domain>/edge``, ``<domain>/cluster_<k>``)."""
    sets = {"public": p.public}
    for dom in p.domains:
        sets[f"{dom.name}/edge"] = dom.edge
        sets.update({f"{dom.name}/cluster_{k}": c.index for k, c in enumerate(dom.clusters)})
    return sets


def _assert_disjoint(sets: dict[str, np.ndarray]) -> None:
    for name, idx in sets.items():
        assert len(np.unique(idx)) == len(idx), f"{name} repeats an image"
    for (a, ia), (b, ib) in itertools.combinations(sets.items(), 2):
        assert not np.intersect1d(ia, ib).size, f"{a} and {b} share images"


def test_sizes_and_disjointness():
    p = _part()
    train, test = _train_sets(p), {f"{d.name}/test": d.test for d in p.domains}
    assert len(train) == 1 + 3 * (1 + 3) and len(test) == 3
    _assert_disjoint(train)
    _assert_disjoint(test)
    assert len(p.public) == 400 and set(p.public_domain.tolist()) == {0, 1, 2}
    for dom in p.domains:
        assert len(dom.test) == 50 and len(dom.edge) == 30
        assert [len(c.index) for c in dom.clusters] == [100] * 3
    assert max(np.concatenate(list(train.values()))) < len(TRAIN)


def test_same_seed_same_partition_other_seed_differs():
    a, b, c = _part(seed=7), _part(seed=7), _part(seed=8)
    sa, sb, sc = _train_sets(a), _train_sets(b), _train_sets(c)
    assert all(np.array_equal(sa[name], sb[name]) for name in sa)
    assert np.array_equal(a.public_domain, b.public_domain)
    masks = [
        (x.labelled, y.labelled) for x, y in zip(a.domains[0].clusters, b.domains[0].clusters, strict=True)
    ]
    assert all(np.array_equal(x, y) for x, y in masks)
    assert not any(np.array_equal(sa[name], sc[name]) for name in sa)


def _skew(alpha: float) -> float:
    spec = dataclasses.replace(SPEC, dirichlet_alpha=alpha, clusters=5)
    skews = []
    for seed in range(3):
        p = _part(spec, seed)
        skews.append(label_skew([TRAIN[c.index] for d in p.domains for c in d.clusters], C))
    return float(np.mean(skews))


def test_small_alpha_skews_more():
    small, large = _skew(0.05), _skew(100.0)
    assert small > 0.6 and large < 0.2 and small > large


@pytest.mark.parametrize(
    ("fraction", "n", "expected"), [(0.1, 100, 10), (0.1, 95, 10), (0.0, 100, 0), (1.0, 100, 100)]
)
def test_labelled_fraction_exact(fraction, n, expected):
    spec = dataclasses.replace(SPEC, labelled_fraction=fraction, samples_per_cluster=n)
    assert spec.labelled_per_cluster == expected
    for dom in _part(spec).domains:
        assert [int(c.labelled.sum()) for c in dom.clusters] == [expected] * spec.clusters


def test_too_small_pools_say_what_is_needed():
    big = dataclasses.replace(SPEC, public_pool=2100, test_per_domain=300)
    with pytest.raises(
        ValueError, match=r"3090 images needed.*3000 available.*900 images needed.*600 available"
    ):
        _part(big)


def test_class_running_out_falls_back():
    # class 0 has only 5 images; a tiny α puts nearly all the mass on one class
    labels = np.concatenate([np.zeros(5, int), np.ones(200, int), np.full(200, 2)])
    pool = np.arange(len(labels)) + 1000
    for seed in range(20):
        got = dirichlet_sample(pool, labels, 150, 3, 1e-3, np.random.default_rng(seed))
        assert len(got) == 150 and len(np.unique(got)) == 150 and np.isin(got, pool).all()


def test_folder_domains_draw_from_their_own_images():
    train_domain = np.arange(len(TRAIN)) % 3
    test_domain = np.arange(len(TEST)) % 3
    p = _part(train_domain=train_domain, test_domain=test_domain)
    _assert_disjoint(_train_sets(p))
    for d, dom in enumerate(p.domains):
        assert (train_domain[dom.edge] == d).all() and (test_domain[dom.test] == d).all()
        assert all((train_domain[c.index] == d).all() for c in dom.clusters)
    assert np.array_equal(p.public_domain, train_domain[p.public])
    with pytest.raises(ValueError, match="domain 'invert' train pool: 330 images needed, 0 available"):
        _part(train_domain=np.minimum(train_domain, 1), test_domain=test_domain)


def test_label_skew_bounds():
    assert label_skew([np.repeat(np.arange(C), 3)], C) == pytest.approx(0.0)
    assert label_skew([np.zeros(7, int), np.ones(3, int)], C) == pytest.approx(0.9)
    assert label_skew([], C) == 0.0
