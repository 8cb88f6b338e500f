"""Batches cut from tensors in one indexing operation, the tensors on the accelerator when they fit.

``DataLoader(TensorDataset(x), batch_size=B, shuffle=True, generator=g)`` fetches every image on
its own and stacks them (one Python call per image); on a GPU the batch is then copied over.  Here
the same shuffled index batches (``BatchSampler(RandomSampler(generator=g))`` is what that loader
uses, so the batches are identical) index the whole tensor at once, and where the accelerator is
CUDA and the tensors take less than ``share`` of its free memory they are moved there first, so no
batch crosses the bus.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset


def device_for(accelerator: str) -> torch.device:
    """The device Lightning will train on for ``accelerator`` (auto: CUDA when there is one)."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if accelerator == "mps" or (accelerator == "auto" and torch.backends.mps.is_available()):
        return torch.device("mps")
    return torch.device("cpu")


def resident(tensors: tuple[Tensor, ...], accelerator: str, share: float = 0.5) -> tuple[Tensor, ...]:
    """``tensors`` on the CUDA device when ``accelerator`` is CUDA and they fit, else as they are."""
    if device_for(accelerator).type != "cuda":
        return tensors
    free, _ = torch.cuda.mem_get_info()
    if sum(t.numel() * t.element_size() for t in tensors) > share * free:
        return tensors
    return tuple(t.cuda() for t in tensors)


def index_loader(
    tensors: tuple[Tensor, ...],
    batch_size: int,
    shuffle: bool,
    seed: int,
    accelerator: str = "cpu",
    drop_last: bool = False,
) -> DataLoader:
    """Batches of ``tensors`` as :class:`DataLoader` with ``shuffle`` and a seeded generator would
    give them, each cut in one indexing operation (see the module docstring)."""
    ds = TensorDataset(*resident(tensors, accelerator))
    g = torch.Generator().manual_seed(seed)
    order = RandomSampler(ds, generator=g) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, batch_size=None, sampler=BatchSampler(order, batch_size, drop_last), generator=g)
