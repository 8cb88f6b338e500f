"""The prepare stage on digits: the layout, what PreparedData reads back, and no half-written folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecogen.config.params import DataParams, HfslParams, Params
from ecogen.data.prepared import UNLABELLED, PreparedData
from ecogen.data.seeding import derive_seed
from ecogen.data.sources.digits import load_digits_source
from ecogen.stages import prepare as prepare_module
from ecogen.stages.prepare import prepare
from ecogen.workspace import Workspace

DOMAINS = ["identity", "invert", "noise"]


def _params(**data) -> Params:
    base = dict(
        source="digits", domains=DOMAINS, test_per_domain=30, public_pool=200, edge_labelled=20,
        samples_per_cluster=60, dirichlet_alpha=0.5, labelled_fraction=0.25,
    )  # fmt: skip
    return Params(seed=3, data=DataParams(**{**base, **data}), hfsl=HfslParams(clusters=2))


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x}


def test_prepare_writes_the_layout(tmp_path):
    ws = Workspace(tmp_path)
    result = prepare(_params(), ws)
    data = PreparedData(ws.data)
    meta = data.meta
    assert (meta.source, meta.image_size, meta.channels, meta.num_classes) == ("digits", 8, 1, 10)
    assert meta.domains == DOMAINS and meta.clusters == 2
    assert data.public().shape == (200, 1, 8, 8) and data.public().dtype == torch.uint8
    for domain in DOMAINS:
        assert len(data.test(domain)) == 30 and len(data.edge(domain)) == 20
        assert bool(data.edge(domain).labelled.all()) and bool(data.test(domain).labelled.all())
        for cluster in data.clusters(domain):
            assert len(cluster) == 60 and int(cluster.labelled.sum()) == 15
            assert set(cluster.y[~cluster.labelled].tolist()) == {UNLABELLED}
    assert meta.counts["public"] == 200 and meta.counts["noise/cluster_1"] == 60
    assert sum(meta.counts.values()) == 200 + 3 * (30 + 20 + 120)
    assert result.name == "prepare" and result.params["source"] == "digits"
    assert result.metrics["images_client_labelled"] == 3 * 2 * 15
    assert 0.0 < result.metrics["label_skew"] < 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary folders left behind

    # Domains are transforms of real test-pool rows: identity copies them, invert flips them.
    pool = _rows(load_digits_source(derive_seed(3, "source")).test.x)
    assert _rows(data.test("identity").x) <= pool
    assert _rows(255 - data.test("invert").x) <= pool
    assert not _rows(data.test("noise").x) <= pool


def test_prepare_is_reproducible_and_replaces_old_data(tmp_path):
    ws_a, ws_b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    prepare(_params(), ws_a)
    (ws_a.data / "stale.txt").write_text("from an older run")
    prepare(_params(), ws_a)
    prepare(_params(), ws_b)
    assert not (ws_a.data / "stale.txt").exists()
    a, b = PreparedData(ws_a.data), PreparedData(ws_b.data)
    assert torch.equal(a.public(), b.public())
    assert torch.equal(a.cluster("noise", 1).x, b.cluster("noise", 1).x)
    assert np.array_equal(a.cluster("noise", 1).y.numpy(), b.cluster("noise", 1).y.numpy())


def _disk_full(*args, **kwargs):
    raise RuntimeError("disk full")


def test_failing_prepare_leaves_no_data_folder(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    monkeypatch.setattr(prepare_module, "save_meta", _disk_full)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(_params(), ws)
    assert list(tmp_path.iterdir()) == []


def test_failing_prepare_keeps_previous_data(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    prepare(_params(), ws)
    monkeypatch.setattr(prepare_module, "save_meta", _disk_full)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(_params(public_pool=100), ws)
    assert PreparedData(ws.data).meta.counts["public"] == 200
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_too_small_pool_fails_before_writing(tmp_path):
    with pytest.raises(ValueError, match="images needed"):
        prepare(_params(public_pool=5000), Workspace(tmp_path))
    assert list(tmp_path.iterdir()) == []
