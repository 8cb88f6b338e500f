"""Distillation of the edges' domain models (teachers) into one student on the transfer set.

Teachers are frozen: their per-sample weighted targets are computed once (Lightning predict),
then the student trains on (image, soft target) pairs with the temperature-scaled KL loss of
Hinton et al. (2015, arXiv 1503.02531).
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ecogen.relay.weighting import Weighting, ensemble, routed_weights, teacher_weights


class TeacherEnsemble(L.LightningModule):
    """predict_step → (weighted target (B, K), weights (T, B)) for a batch of transfer images.

    ``router`` (weighting ``routed``): images → the index of the teacher each is routed to."""

    def __init__(
        self,
        teachers: list[nn.Module],
        weighting: Weighting,
        temperature: float,
        router: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if (weighting == "routed") != (router is not None):
            raise ValueError("the routed weighting needs a router, and only it uses one")
        self.teachers = nn.ModuleList(teachers)
        self.weighting, self.temperature, self.router = weighting, temperature, router

    def predict_step(self, batch: list[Tensor], batch_idx: int) -> tuple[Tensor, Tensor]:
        (x,) = batch
        probs = torch.stack([(t(x) / self.temperature).softmax(-1) for t in self.teachers])
        if self.router is not None:
            weights = routed_weights(self.router(x), len(self.teachers)).to(probs)
        else:
            weights = teacher_weights(probs, self.weighting)
        return ensemble(probs, weights), weights


class SoftTargetModule(L.LightningModule):
    def __init__(self, student: nn.Module, lr: float, temperature: float) -> None:
        super().__init__()
        self.student, self.lr, self.temperature = student, lr, temperature

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        x, target = batch
        T = self.temperature
        logp = F.log_softmax(self.student(x) / T, dim=-1)
        loss = F.kl_div(logp, target, reduction="batchmean") * T * T
        self.log("distill_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        params = [p for p in self.student.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def soft_targets_loader(x: Tensor, targets: Tensor, batch_size: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, targets), batch_size=batch_size, shuffle=True, generator=g)
