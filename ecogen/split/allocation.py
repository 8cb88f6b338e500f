"""Which device holds which part of the model.

Device 0 (start) holds the embedding, device C-1 (end) the norm + head, and the C-2 middle
devices hold contiguous block ranges, by one of the rules in ``RULES`` (``hfsl.allocation``):

* ``balanced``: ranges as equal as possible; when the depth does not divide evenly the *earlier*
  middle devices take one block more (they sit closer to the data holder).
* ``front``: every middle device but the last holds one block and the last holds the rest, for
  clusters whose last middle device is markedly stronger than the others.
"""

from __future__ import annotations

from collections.abc import Callable


def _balanced(depth: int, middle: int) -> list[int]:
    base, extra = divmod(depth, middle)
    return [base + (1 if i < extra else 0) for i in range(middle)]


def _front(depth: int, middle: int) -> list[int]:
    return [1] * (middle - 1) + [depth - (middle - 1)]


# rule name → blocks per middle device, given the depth and the middle devices (a new rule is an entry)
RULES: dict[str, Callable[[int, int], list[int]]] = {"balanced": _balanced, "front": _front}


def allocate_blocks(depth: int, devices: int, rule: str = "balanced") -> list[tuple[int, int]]:
    """Half-open block ranges ``[(start, end), ...]``, one per middle device."""
    if devices < 3:
        raise ValueError(f"a cluster needs ≥3 devices (start, middle, end), got {devices}")
    middle = devices - 2
    if depth < middle:
        raise ValueError(f"{middle} middle devices cannot share {depth} blocks (≥1 block each)")
    if rule not in RULES:
        raise ValueError(f"unknown allocation rule {rule!r}; known: {', '.join(RULES)}")
    ranges, start = [], 0
    for size in RULES[rule](depth, middle):
        ranges.append((start, start + size))
        start += size
    return ranges
