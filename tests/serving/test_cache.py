"""The edge cache: LRU eviction order, hit/miss/eviction accounting, bad capacities, near duplicates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecogen.serving.cache import EdgeCache, Prediction, content_key


def _p(label: int) -> Prediction:
    return Prediction(label, (0.0,) * label + (1.0,))


def test_content_key_sees_bytes_shape_and_dtype() -> None:
    a = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    assert content_key(a) == content_key(a.copy())
    assert content_key(a) != content_key(a.reshape(1, 2, 8))
    assert content_key(a) != content_key(a.astype(np.int16))
    b = a.copy()
    b[0, 0, 0] += 1
    assert content_key(a) != content_key(b)


def test_least_recently_used_goes_first() -> None:
    cache = EdgeCache(capacity=2)
    cache.put("a", _p(0))
    cache.put("b", _p(1))
    assert cache.lookup("a") == (_p(0), False)  # a is now the most recent: b goes next
    cache.put("c", _p(2))
    assert cache.keys() == ["a", "c"]
    assert cache.lookup("b") == (None, False)
    s = cache.stats()
    assert (s.hits, s.misses, s.evictions, s.size) == (1, 1, 1, 2)


def test_hit_accounting_and_rate() -> None:
    cache = EdgeCache(capacity=3)
    for key in "aab":
        if cache.lookup(key)[0] is None:
            cache.put(key, _p(1))
    s = cache.stats()
    assert (s.hits, s.near_hits, s.misses, s.requests) == (1, 0, 2, 3)
    assert s.hit_rate == pytest.approx(1 / 3)
    assert EdgeCache(1).stats().hit_rate == 0.0  # no requests yet: no division by zero


def test_put_again_refreshes_without_evicting() -> None:
    cache = EdgeCache(capacity=2)
    cache.put("a", _p(0))
    cache.put("b", _p(1))
    cache.put("a", _p(2))
    assert cache.keys() == ["b", "a"]
    assert cache.stats().evictions == 0
    assert cache.lookup("a")[0] == _p(2)


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        EdgeCache(capacity)


def test_threshold_must_be_a_cosine() -> None:
    with pytest.raises(ValueError, match="cosine similarity"):
        EdgeCache(4, near_threshold=1.5)


def test_near_duplicate_hits_above_threshold_only() -> None:
    cache = EdgeCache(capacity=4, near_threshold=0.95)
    cache.put("a", _p(0), torch.tensor([1.0, 0.0]))
    cache.put("b", _p(1), torch.tensor([0.0, 1.0]))
    # cosine 0.995 to a: a near hit with a's answer
    assert cache.lookup("x", torch.tensor([1.0, 0.1])) == (_p(0), True)
    assert cache.keys()[-1] == "a"  # a near hit marks the entry it used
    # cosine 0.707 to both: a miss
    assert cache.lookup("y", torch.tensor([1.0, 1.0])) == (None, False)
    # an exact key wins over features
    assert cache.lookup("b", torch.tensor([1.0, 0.0])) == (_p(1), False)
    s = cache.stats()
    assert (s.hits, s.near_hits, s.misses) == (1, 1, 1)
    assert s.hit_rate == pytest.approx(2 / 3)


def test_near_cache_needs_features_and_exact_cache_ignores_them() -> None:
    with pytest.raises(ValueError, match="needs the image's feature"):
        EdgeCache(2, near_threshold=0.9).put("a", _p(0))
    exact = EdgeCache(2)
    exact.put("a", _p(0), torch.ones(3))
    assert exact.lookup("z", torch.ones(3)) == (None, False)


def test_an_evicted_entry_leaves_the_feature_bank() -> None:
    cache = EdgeCache(capacity=2, near_threshold=0.95)
    cache.put("a", _p(0), torch.tensor([1.0, 0.0, 0.0]))
    cache.put("b", _p(1), torch.tensor([0.0, 1.0, 0.0]))
    cache.put("c", _p(2), torch.tensor([0.0, 0.0, 1.0]))  # evicts a: its row is c's now
    assert cache.lookup("x", torch.tensor([1.0, 0.0, 0.0])) == (None, False)
    assert cache.lookup("y", torch.tensor([0.0, 0.0, 2.0])) == (_p(2), True)
    cache.put("b", _p(0), torch.tensor([1.0, 0.0, 0.0]))  # b again, with a new feature in its row
    assert cache.lookup("z", torch.tensor([0.0, 1.0, 0.0])) == (None, False)
    assert cache.lookup("w", torch.tensor([0.9, 0.1, 0.0])) == (_p(0), True)
    with pytest.raises(ValueError, match="feature of 2 values; this bank holds 3"):
        cache.put("d", _p(0), torch.ones(2))
    assert cache.keys() == ["c", "b"] and cache.stats().evictions == 1  # the refused put changed nothing
