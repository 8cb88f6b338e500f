"""A replayable request trace: Zipf popularity over a catalogue of test images.

Requests to an edge are skewed: a few items are asked for often, most rarely.  Zipf(s) says
the item of popularity rank r (0-based) is asked for with probability ∝ 1/(r+1)^s.  Which test
image holds which rank is a seeded permutation, so a trace is fixed by (requests, catalogue,
s, seed) and replays identically: the same figures from the same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def zipf_probabilities(catalogue: int, s: float) -> np.ndarray:
    """(catalogue,) probability of each popularity rank, most popular first."""
    if catalogue < 1:
        raise ValueError(f"the catalogue needs at least one item, got {catalogue}")
    if s < 0:
        raise ValueError(f"the Zipf exponent must be ≥ 0, got {s}")
    weights = 1.0 / np.arange(1, catalogue + 1, dtype=np.float64) ** s
    return weights / weights.sum()


@dataclass(frozen=True)
class ZipfTrace:
    """``images[j]``: the index into the test set of request j's image."""

    requests: int
    catalogue: int
    s: float
    seed: int
    images: np.ndarray  # (requests,) int64 indices into the pool of images
    ranks: np.ndarray  # (requests,) popularity rank of each request's item, 0 the most popular


def zipf_trace(requests: int, catalogue: int, pool: int, s: float = 1.0, seed: int = 0) -> ZipfTrace:
    """``requests`` draws over ``catalogue`` items, each item one of ``pool`` test images.

    One generator, in a fixed order: first the permutation that gives ranks their images, then the
    ranks of the requests.
    """
    if requests < 1:
        raise ValueError(f"a trace needs at least one request, got {requests}")
    if catalogue > pool:
        raise ValueError(f"a catalogue of {catalogue} items needs {catalogue} images; the pool has {pool}")
    rng = np.random.default_rng(seed)
    image_of_rank = rng.permutation(pool)[:catalogue]
    ranks = rng.choice(catalogue, size=requests, p=zipf_probabilities(catalogue, s))
    return ZipfTrace(
        requests, catalogue, s, seed, image_of_rank[ranks].astype(np.int64), ranks.astype(np.int64)
    )
