"""One place that builds Lightning Trainers: quiet, seeded, accelerator from params."""

from __future__ import annotations

import logging
import warnings
from contextlib import ExitStack
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from ecogen.data.prepared import Split, to_float
from ecogen.runtime.backends import computing
from ecogen.runtime.progress import Step, report

log = logging.getLogger("ecogen.training")


class History(Callback):
    """Collects epoch-level metrics (``self.log(..., on_epoch=True)``) and reports each epoch to
    :mod:`ecogen.runtime.progress` (``part``: the edge, one of ``parts`` training in parallel)."""

    def __init__(self, stage: str, part: str | None = None, parts: int = 1) -> None:
        self.stage, self.part, self.parts = stage, part, parts
        self.label = f"{stage}[{part}]" if part else stage
        self.series: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values: dict[str, float] = {}
        for key, tensor in trainer.callback_metrics.items():
            if not key.endswith("_step"):
                values[key.removesuffix("_epoch")] = float(tensor)
        for name, value in values.items():
            self.series.setdefault(name, []).append(value)
        epoch, total = trainer.current_epoch + 1, int(trainer.max_epochs or 0)
        report(Step(self.stage, epoch, total, values, part=self.part, parts=self.parts))
        shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
        log.debug("%s epoch %d/%d %s", self.label, epoch, total, shown)


class Computing(Callback):
    """Each batch (forward, backward and step) inside :func:`~ecogen.runtime.backends.computing`,
    so that no model export switches torch's backends off under it."""

    def __init__(self) -> None:
        self.held = ExitStack()

    def on_train_batch_start(self, *args: Any, **kwargs: Any) -> None:
        self.held.enter_context(computing())

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self.held.close()

    on_validation_batch_start = on_test_batch_start = on_predict_batch_start = on_train_batch_start
    on_validation_batch_end = on_test_batch_end = on_predict_batch_end = on_train_batch_end
    on_exception = on_train_batch_end


def make_trainer(
    accelerator: str, max_epochs: int, callbacks: list[Callback] | None = None, **kw: Any
) -> L.Trainer:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):  # quiet
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*pytree.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    if accelerator == "cuda":
        accelerator = "gpu"
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        callbacks=[*(callbacks or []), Computing()],
        **kw,
    )


def trainer_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision for a stage's ``precision`` param: ``auto`` is bf16 autocast on a CUDA
    device with bf16, float32 elsewhere (CPU autocast gains nothing on the models here)."""
    if precision != "auto":
        return "32-true" if precision == "32" else precision
    from ecogen.training.resident import device_for

    cuda = device_for(accelerator).type == "cuda"
    return "bf16-mixed" if cuda and torch.cuda.is_bf16_supported() else "32-true"


def loader(split: Split, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """float images in [-1, 1] with their labels (-1 where unlabelled); seeded shuffling."""
    ds = TensorDataset(to_float(split.x), split.y)
    g = torch.Generator().manual_seed(seed)
    # a generator even without shuffling: otherwise the loader draws its base seed from torch's
    # global RNG, which parallel threads share (see ecogen.peft.edge)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g)
