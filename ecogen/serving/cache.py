"""The edge's cache of recent answers: an LRU keyed by the image's content hash.

A request whose exact bytes were answered recently is answered again from the edge, without
crossing a single device link: the same bytes give the same answer (the chain is deterministic
in eval mode), so exact hits cost no accuracy.

Near duplicates are optional: an image whose FM features lie within a cosine threshold of a
cached image's gets that image's answer.  That trades accuracy for hits (a near duplicate need
not have the same class); the benchmark (``benchmarks/edge_cache.py --near``) states the cost
as the share of near hits whose answer differs from the chain's.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Prediction:
    label: int
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class CacheStats:
    capacity: int
    size: int
    hits: int  # exact hits
    near_hits: int  # answered from a near duplicate's entry
    misses: int
    evictions: int

    @property
    def requests(self) -> int:
        return self.hits + self.near_hits + self.misses

    @property
    def hit_rate(self) -> float:
        return (self.hits + self.near_hits) / max(1, self.requests)


def content_key(image: np.ndarray) -> str:
    """blake2b of dtype, shape and bytes: two arrays share a key only if they are the same image
    (the shape is hashed too, so a 28×28 and a 784-long array of the same bytes differ)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.dtype.str}{image.shape}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


@dataclass
class _Entry:
    prediction: Prediction
    slot: int | None  # its row in the feature bank; None in an exact-only cache


class FeatureBank:
    """Unit-norm features in fixed rows, so that the nearest is one matrix product (no copying
    of the cached features per lookup); a removed entry frees its row for the next."""

    def __init__(self, capacity: int) -> None:
        self._rows: Tensor | None = None  # (capacity, F), allocated at the first feature
        self._used = torch.zeros(capacity, dtype=torch.bool)
        self._keys: list[str | None] = [None] * capacity
        self._free = list(range(capacity - 1, -1, -1))  # lowest row first

    def check(self, feature: Tensor) -> None:
        if self._rows is not None and feature.numel() != self._rows.shape[1]:
            raise ValueError(f"feature of {feature.numel()} values; this bank holds {self._rows.shape[1]}")

    def add(self, key: str, feature: Tensor) -> int:
        self.check(feature)
        f = _unit(feature)
        if self._rows is None:
            self._rows = torch.zeros(len(self._keys), f.numel())
        slot = self._free.pop()
        self._rows[slot], self._used[slot], self._keys[slot] = f, True, key
        return slot

    def remove(self, slot: int) -> None:
        self._used[slot], self._keys[slot] = False, None
        self._free.append(slot)

    def nearest(self, feature: Tensor) -> tuple[str, float] | None:
        """The key of the most similar feature and its cosine; None while the bank is empty."""
        if self._rows is None or not bool(self._used.any()):
            return None
        cos = (self._rows @ _unit(feature)).masked_fill(~self._used, -2.0)  # (capacity,)
        best = int(cos.argmax())
        key = self._keys[best]
        assert key is not None
        return key, float(cos[best])


class EdgeCache:
    """LRU of ``content_key → Prediction``, with hit, miss and eviction counters.

    ``near_threshold``: None, exact matches only; else a lookup that misses exactly may hit the
    most similar cached feature with cosine ≥ threshold (:meth:`lookup`'s ``feature``).
    Thread-safe: the service answers requests from a thread pool.
    """

    def __init__(self, capacity: int, near_threshold: float | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"cache capacity must be at least 1, got {capacity}")
        if near_threshold is not None and not -1.0 <= near_threshold <= 1.0:
            raise ValueError(f"near_threshold is a cosine similarity in [-1, 1], got {near_threshold}")
        self.capacity = capacity
        self.near_threshold = near_threshold
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # oldest use first
        self._bank = FeatureBank(capacity) if near_threshold is not None else None
        self._lock = threading.Lock()
        self._hits = self._near_hits = self._misses = self._evictions = 0

    @property
    def near(self) -> bool:
        return self.near_threshold is not None

    def lookup(self, key: str, feature: Tensor | None = None) -> tuple[Prediction | None, bool]:
        """(the cached answer or None, whether it came from a near duplicate); counts a hit or a
        miss and marks the entry used."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry.prediction, False
            near = self._nearest(feature) if self.near and feature is not None else None
            if near is not None:
                self._entries.move_to_end(near)
                self._near_hits += 1
                return self._entries[near].prediction, True
            self._misses += 1
            return None, False

    def _nearest(self, feature: Tensor) -> str | None:
        found = self._bank.nearest(feature) if self._bank is not None else None
        assert self.near_threshold is not None
        return found[0] if found is not None and found[1] >= self.near_threshold else None

    def put(self, key: str, prediction: Prediction, feature: Tensor | None = None) -> None:
        """Store an answer as the most recently used, evicting the least recently used when full."""
        if self.near and feature is None:
            raise ValueError("this cache looks up near duplicates: put needs the image's feature")
        with self._lock:
            if self._bank is not None and feature is not None:
                self._bank.check(feature)  # before anything changes
            old = self._entries.pop(key, None)
            if old is not None:
                self._forget(old)
            elif len(self._entries) >= self.capacity:
                self._forget(self._entries.popitem(last=False)[1])
                self._evictions += 1
            slot = self._bank.add(key, feature) if self._bank is not None and feature is not None else None
            self._entries[key] = _Entry(prediction, slot)

    def _forget(self, entry: _Entry) -> None:
        if self._bank is not None and entry.slot is not None:
            self._bank.remove(entry.slot)

    def keys(self) -> list[str]:
        """Cached keys, least recently used first (the next to go)."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self.capacity, len(self._entries), self._hits, self._near_hits, self._misses, self._evictions
            )


def _unit(feature: Tensor) -> Tensor:
    f = feature.detach().flatten().float()
    return f / f.norm().clamp_min(1e-12)
