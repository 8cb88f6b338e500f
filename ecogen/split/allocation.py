"""Which device holds which part of the model.

Rule: device 0 (start) holds the embedding, device C-1 (end) the norm + head, and the C-2 middle
devices hold contiguous block ranges as equal as possible; when the depth does not divide
evenly the *earlier* middle devices take one block more (they sit closer to the data holder and
usually send the same activation size anyway).
"""

from __future__ import annotations


def allocate_blocks(depth: int, devices: int) -> list[tuple[int, int]]:
    """Half-open block ranges ``[(start, end), ...]``, one per middle device."""
    if devices < 3:
        raise ValueError(f"a cluster needs ≥3 devices (start, middle, end), got {devices}")
    middle = devices - 2
    if depth < middle:
        raise ValueError(f"{middle} middle devices cannot share {depth} blocks (≥1 block each)")
    base, extra = divmod(depth, middle)
    ranges, start = [], 0
    for i in range(middle):
        end = start + base + (1 if i < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges
