"""The clients' data in increments: which rows of a split arrived in which increment.

A split of ``n`` images (a cluster's, an edge's labelled set) is cut into ``N`` contiguous parts of
sizes as equal as possible (the split's rows are already in a seeded random order); increment
``j`` brings part ``j``.  A run that takes in increment ``i`` holds parts ``0…i``, so an increment
is the same images whenever it is taken in, and taking it in again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bounds(n: int, parts: int) -> list[int]:
    """Row offsets ``[0, e_0, e_1, …, n]`` of ``parts`` contiguous parts of ``n`` rows (first parts
    one larger when ``parts`` does not divide ``n``)."""
    if parts < 1 or n < parts:
        raise ValueError(f"cannot cut {n} rows into {parts} non-empty increments")
    sizes = [len(a) for a in np.array_split(np.arange(n), parts)]
    return [0, *np.cumsum(sizes).tolist()]


@dataclass(frozen=True)
class StreamState:
    """What ``data/meta.json`` records of a stream: ``taken`` increments of ``increments`` are in
    the data; ``cluster`` / ``edge``: row offsets of each increment in a cluster's / the edge's
    split (:func:`bounds`, cut at ``taken``)."""

    increments: int
    taken: int
    shift_at: int | None
    shift: str
    cluster: list[int]
    edge: list[int]

    @property
    def newest(self) -> int:
        return self.taken - 1

    def shifted(self, increment: int) -> bool:
        return self.shift_at is not None and increment >= self.shift_at

    def rows(self, offsets: list[int], increment: int) -> slice:
        """The rows of ``increment`` in a split cut at ``offsets``."""
        if not 0 <= increment < self.taken:
            raise ValueError(f"increment {increment} is not in the data (increments 0…{self.newest} are)")
        return slice(offsets[increment], offsets[increment + 1])
