"""Derived seeds: one root ``params.seed`` fans out into independent, stable streams.

Each consumer (the digits split, the partition, every domain's transform of every split) gets its
own seed derived from the root seed and a key path.  Changing how many numbers one consumer draws
then never shifts what another one sees, and the derivation is the same across processes and
Python versions (``hash()`` of a string is salted per process, so strings go through CRC32).
"""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 32-bit seed for the stream named ``keys`` under the root ``seed``."""
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    # SeedSequence needs non-negative entropy; fold negative roots into their own range.
    entropy = seed if seed >= 0 else (1 << 64) + seed
    return int(np.random.SeedSequence(entropy, spawn_key=tuple(words)).generate_state(1)[0])
