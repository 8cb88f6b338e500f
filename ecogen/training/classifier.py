"""Supervised training and evaluation of a (PEFT-wrapped) classifier. Only tunable params train."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecogen.data.prepared import Split
from ecogen.peft.inference import for_inference
from ecogen.training.augment import weak
from ecogen.training.trainer import loader, make_trainer


class ClassifierModule(L.LightningModule):
    def __init__(
        self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0, augment_seed: int | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.lr, self.weight_decay = lr, weight_decay
        # small labelled sets overfit fast: train on the weak (shifted) view when a seed is given
        self.gen = None if augment_seed is None else torch.Generator().manual_seed(augment_seed)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        if self.gen is not None:
            x = weak(x, self.gen)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self.log("train_acc", (logits.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True)
        return loss

    def test_step(self, batch: list[Tensor], batch_idx: int) -> None:
        x, y = batch
        acc = (self.model(x).argmax(-1) == y).float().mean()
        self.log("accuracy", acc, on_step=False, on_epoch=True, batch_size=len(y))

    def predict_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return self.model(batch[0]).argmax(-1)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def evaluate(model: nn.Module, split: Split, batch_size: int, accelerator: str) -> float:
    """Top-1 accuracy of ``model`` on a labelled split, through Lightning's test loop (LoRA merged
    into a copy's weights, :func:`~ecogen.peft.inference.for_inference`)."""
    module = ClassifierModule(for_inference(model))
    trainer = make_trainer(accelerator, max_epochs=1)
    (out,) = trainer.test(module, loader(split, batch_size, shuffle=False, seed=0), verbose=False)
    return float(out["accuracy"])


def class_accuracy(model: nn.Module, split: Split, batch_size: int, accelerator: str, classes: int) -> Tensor:
    """Accuracy per true class (``classes``,) through Lightning's predict loop; NaN for a class
    the split does not hold."""
    trainer = make_trainer(accelerator, max_epochs=1)
    module = ClassifierModule(for_inference(model))
    batches = trainer.predict(module, loader(split, batch_size, shuffle=False, seed=0))
    assert batches is not None
    pred = torch.cat([b.cpu() for b in batches])  # type: ignore[union-attr]
    hits = torch.bincount(split.y[pred == split.y], minlength=classes).float()
    total = torch.bincount(split.y, minlength=classes).float()
    return hits / total


def mix_accuracy(per_class: Tensor, mix: Tensor) -> float:
    """The accuracy a test set with class frequencies ``mix`` would give: Σ_c mix_c · acc_c over the
    classes the test holds (``mix`` renormalised over them)."""
    known = ~per_class.isnan()
    weights = mix[known] / mix[known].sum()
    return float((weights * per_class[known]).sum())
