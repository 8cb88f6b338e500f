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
    feature: Tensor | None  # (F,) unit-norm FM feature, only when near duplicates are looked up


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
        keys = [k for k, e in self._entries.items() if e.feature is not None]
        if not keys:
            return None
        bank = torch.stack([f for e in self._entries.values() if (f := e.feature) is not None])  # (n, F)
        cos = bank @ _unit(feature)  # (n,)
        best = int(cos.argmax())
        assert self.near_threshold is not None
        return keys[best] if float(cos[best]) >= self.near_threshold else None

    def put(self, key: str, prediction: Prediction, feature: Tensor | None = None) -> None:
        """Store an answer as the most recently used, evicting the least recently used past capacity."""
        if self.near and feature is None:
            raise ValueError("this cache looks up near duplicates: put needs the image's feature")
        with self._lock:
            self._entries[key] = _Entry(prediction, _unit(feature) if feature is not None else None)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
                self._evictions += 1

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
