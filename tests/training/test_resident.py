"""index_loader: the batches a shuffled, seeded DataLoader gives, cut in one indexing operation."""

import torch
from torch.utils.data import DataLoader, TensorDataset

from ecogen.training.resident import index_loader, resident
from ecogen.training.trainer import trainer_precision


def test_same_batches_as_the_shuffled_dataloader_every_epoch() -> None:
    x, y = torch.randn(50, 3), torch.arange(50)
    plain = DataLoader(
        TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(4)
    )
    ours = index_loader((x, y), 8, True, seed=4)
    for _ in range(2):
        a, b = list(plain), list(ours)
        assert len(a) == len(b) == 7
        assert all(torch.equal(u[0], v[0]) and torch.equal(u[1], v[1]) for u, v in zip(a, b, strict=True))


def test_drop_last_keeps_one_shape_and_cpu_keeps_tensors_where_they_are() -> None:
    x = torch.randn(50, 3)
    shapes = {tuple(b[0].shape) for b in index_loader((x,), 8, False, seed=0, drop_last=True)}
    assert shapes == {(8, 3)}
    assert resident((x,), "cpu")[0] is x
    assert trainer_precision("auto", "cpu") == "32-true" and trainer_precision("32", "cpu") == "32-true"
