"""Taking in increments: the prepared splits of one domain cut to the increments taken so far.

Every split is styled whole first (so an image looks the same whichever increment takes it in),
then cut (:func:`~ecogen.stream.increments.bounds`); the increments from ``stream.shift_at`` on
also go through ``stream.shift`` with a seed of their own.  The fixed held-out test set is never
cut nor shifted; each increment has its own test slice, drawn from test images no split uses.
"""

from __future__ import annotations

import numpy as np

from ecogen.config.params import StreamParams
from ecogen.data.domains import apply_domain
from ecogen.data.errors import DataError
from ecogen.data.prepared import Split
from ecogen.data.seeding import derive_seed
from ecogen.stream.increments import StreamState, bounds


def taken(stream: StreamParams) -> int:
    """How many increments a prepare of ``stream`` writes (``stream.increment`` null: the first)."""
    assert stream.increments is not None
    return (stream.increment or 0) + 1


def shifted(split: Split, stream: StreamParams, offsets: list[int], upto: int, seed: int) -> Split:
    """The rows of increments ``0…upto-1`` of ``split``, those from ``shift_at`` on shifted."""
    x, y = split.x[: offsets[upto]].clone(), split.y[: offsets[upto]].clone()
    for j in range(stream.shift_at or upto, upto):
        rows = slice(offsets[j], offsets[j + 1])
        x[rows] = apply_domain(stream.shift, x[rows], derive_seed(seed, "shift", j))
    return Split(x, y)


def cut(splits: dict[str, Split], stream: StreamParams, seed: int) -> tuple[dict[str, Split], StreamState]:
    """A domain's ``test``, ``edge`` and ``cluster_<k>`` splits as of the increments taken in."""
    assert stream.increments is not None
    upto = taken(stream)
    out, offsets = {"test": splits["test"]}, {}
    for name, split in splits.items():
        if name == "test":
            continue
        offsets[name] = bounds(len(split), stream.increments)
        out[name] = shifted(split, stream, offsets[name], upto, derive_seed(seed, name))
    state = StreamState(
        increments=stream.increments,
        taken=upto,
        shift_at=stream.shift_at,
        shift=stream.shift,
        cluster=offsets.get("cluster_0", [])[: upto + 1],
        edge=offsets["edge"][: upto + 1],
    )
    return out, state


def draw_tests(
    used: np.ndarray, size: int, domains: int, stream: StreamParams, seed: int, domain_of: np.ndarray | None
) -> list[np.ndarray]:
    """Per domain, ``increments × test_per_increment`` test-pool indices that no split uses."""
    assert stream.increments is not None
    free = np.ones(size, dtype=bool)
    free[used] = False
    rng = np.random.default_rng(seed)
    need = stream.increments * stream.test_per_increment
    out = []
    for d in range(domains):
        pool = np.flatnonzero(free if domain_of is None else free & (domain_of == d))
        if len(pool) < need:
            raise DataError(
                f"stream test slices: {need} test images needed per domain ({stream.increments} increments × "
                f"test_per_increment {stream.test_per_increment}), {len(pool)} left after the test sets"
            )
        chosen = rng.choice(pool, size=need, replace=False).astype(np.int64)
        free[chosen] = False
        out.append(chosen)
    return out


def increment_tests(styled: Split, stream: StreamParams, seed: int) -> list[Split]:
    """The test slices of the increments taken in, from one domain's styled test images."""
    assert stream.increments is not None
    offsets = [j * stream.test_per_increment for j in range(stream.increments + 1)]
    whole = shifted(styled, stream, offsets, taken(stream), seed)
    return [
        Split(whole.x[offsets[j] : offsets[j + 1]], whole.y[offsets[j] : offsets[j + 1]])
        for j in range(taken(stream))
    ]
