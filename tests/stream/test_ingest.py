"""A stream's prepare on digits: increments that never change once in, a shift from shift_at on,
a held-out test slice per increment, and what meta.json records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecogen.config.params import DataParams, HfslParams, Params, StreamParams
from ecogen.data.errors import DataError
from ecogen.data.prepared import PreparedData
from ecogen.stages.prepare import prepare
from ecogen.stream.ingest import draw_tests
from ecogen.workspace import Workspace

DOMAINS = ["identity", "noise"]


def _params(**stream) -> Params:
    data = DataParams(
        source="digits", domains=DOMAINS, test_per_domain=30, public_pool=200, edge_labelled=20,
        samples_per_cluster=60, labelled_fraction=0.25,
    )  # fmt: skip
    s = StreamParams(increments=4, test_per_increment=10, **stream)
    return Params(seed=3, data=data, hfsl=HfslParams(clusters=2), stream=s)


def _data(tmp_path, name: str, **stream) -> PreparedData:
    ws = Workspace(tmp_path / name)
    prepare(_params(**stream), ws)
    return PreparedData(ws.data)


def test_increments_once_in_never_change(tmp_path):
    early, late = _data(tmp_path, "early", increment=1), _data(tmp_path, "late", increment=3)
    assert early.stream is not None and late.stream is not None
    assert (early.stream.taken, late.stream.taken) == (2, 4)
    assert early.stream.cluster == [0, 15, 30] and late.stream.cluster == [0, 15, 30, 45, 60]
    for domain in DOMAINS:
        a, b = early.cluster(domain, 1), late.cluster(domain, 1)
        assert len(a) == 30 and len(b) == 60
        assert torch.equal(a.x, b.x[:30]) and torch.equal(a.y, b.y[:30])
        assert torch.equal(early.edge(domain).x, late.edge(domain).x[:10])
        assert torch.equal(early.test(domain).x, late.test(domain).x)  # the fixed set: never cut
        assert torch.equal(early.increment_test(domain, 1).x, late.increment_test(domain, 1).x)
        assert len(late.increment_test(domain, 3)) == 10
    with pytest.raises(FileNotFoundError):
        early.increment_test("identity", 2)
    assert early.meta.counts["identity/cluster_0"] == 30


def test_the_shift_changes_only_the_increments_from_shift_at(tmp_path):
    plain = _data(tmp_path, "plain", increment=3)
    shifted = _data(tmp_path, "shifted", increment=3, shift_at=2, shift="invert")
    assert shifted.stream is not None and shifted.stream.shifted(2) and not shifted.stream.shifted(1)
    for domain in DOMAINS:
        p, s = plain.cluster(domain, 0), shifted.cluster(domain, 0)
        assert torch.equal(p.x[:30], s.x[:30])  # increments 0 and 1
        assert torch.equal(255 - p.x[30:], s.x[30:])  # increments 2 and 3, inverted
        assert torch.equal(p.y, s.y)
        assert torch.equal(plain.test(domain).x, shifted.test(domain).x)
        assert torch.equal(plain.increment_test(domain, 1).x, shifted.increment_test(domain, 1).x)
        assert torch.equal(255 - plain.increment_test(domain, 3).x, shifted.increment_test(domain, 3).x)


def test_test_slices_use_test_images_no_split_uses():
    used = np.arange(0, 50)
    stream = StreamParams(increments=3, test_per_increment=5)
    per_domain = draw_tests(used, 100, 2, stream, seed=0, domain_of=None)
    together = np.concatenate(per_domain)
    assert [len(t) for t in per_domain] == [15, 15] and len(set(together)) == 30
    assert not set(together) & set(used.tolist())
    with pytest.raises(DataError, match="stream test slices: 15 test images needed per domain"):
        draw_tests(used, 60, 2, stream, seed=0, domain_of=None)
