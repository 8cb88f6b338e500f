"""Cloud pre-training: the masked autoencoder on the unlabelled public pool."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from ecogen.models.vit import MaskedAutoencoder


class MAEModule(L.LightningModule):
    def __init__(
        self,
        mae: MaskedAutoencoder,
        lr: float,
        weight_decay: float,
        mask_ratio: float,
        seed: int,
        compile: bool = False,  # torch.compile the forward (every batch must have one shape)
    ) -> None:
        super().__init__()
        self.mae = mae
        self.lr, self.weight_decay, self.mask_ratio = lr, weight_decay, mask_ratio
        self.seed = seed
        self._gen: torch.Generator | None = None
        # the masking noise is drawn outside, from a seeded generator, which a graph cannot hold
        self.forward_fn = torch.compile(mae.forward) if compile else mae.forward

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        (x,) = batch
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.seed)
        loss, _, _ = self.forward_fn(x, self.mask_ratio, noise=self.mae.noise(x, self._gen))
        self.log("mae_loss", loss, on_step=False, on_epoch=True, prog_bar=False)
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        cuda = next(self.mae.parameters()).is_cuda  # one fused kernel per step there
        opt = torch.optim.AdamW(
            self.mae.parameters(),
            lr=self.lr,
            weight_decay=self.weight_decay,
            betas=(0.9, 0.95),
            fused=cuda or None,
        )
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        # short linear warm-up, then cosine down to 10 % of the peak rate
        warmup = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.SequentialLR(
            opt,
            [
                torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(
                    opt, T_max=max(1, steps - warmup), eta_min=self.lr / 10
                ),
            ],
            milestones=[warmup],
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
