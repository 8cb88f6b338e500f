"""The Zipf request trace: replayable from its seed, and as skewed as the law says."""

from __future__ import annotations

import numpy as np
import pytest

from ecogen.serving.trace import zipf_probabilities, zipf_trace


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    a, b = zipf_trace(2000, 100, 300, seed=7), zipf_trace(2000, 100, 300, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, zipf_trace(2000, 100, 300, seed=8).images)


def test_top_item_frequency_matches_theory() -> None:
    trace = zipf_trace(10_000, 1000, 1000, s=1.0, seed=0)
    expected = 1 / sum(1 / r for r in range(1, 1001))  # 1/H(1000) ≈ 0.134
    assert zipf_probabilities(1000, 1.0)[0] == pytest.approx(expected)
    top = np.mean(trace.ranks == 0)
    assert top == pytest.approx(expected, abs=0.01)
    # every request of rank 0 asks for the same image, and only the catalogue's images are asked for
    assert len(set(trace.images[trace.ranks == 0])) == 1
    assert len(set(trace.images)) <= 1000
    assert trace.images.min() >= 0 and trace.images.max() < 1000


def test_uniform_when_exponent_is_zero() -> None:
    np.testing.assert_allclose(zipf_probabilities(4, 0.0), [0.25] * 4)


def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="needs 50 images; the pool has 10"):
        zipf_trace(10, 50, 10)
    with pytest.raises(ValueError, match="at least one request"):
        zipf_trace(0, 5, 10)
    with pytest.raises(ValueError, match="exponent"):
        zipf_probabilities(5, -1.0)
