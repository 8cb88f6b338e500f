"""What the client-step tests of ``tests/split`` share: a small seeded client split of 8×8 images."""

import torch

from ecogen.data.prepared import UNLABELLED, Split


def client_split(labelled: int = 8, n: int = 24) -> Split:
    """``n`` seeded 8×8 grey images of 3 classes, the first ``labelled`` of them labelled."""
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n,), generator=g)
    y[labelled:] = UNLABELLED
    return Split(x, y)
