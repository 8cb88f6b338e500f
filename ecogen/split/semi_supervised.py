"""One client cluster's local training: split learning through the device chain, FixMatch-style.

Labelled samples train with cross-entropy; unlabelled samples get a pseudo-label from the weak
view (a forward-only pass through the chain) and train on the strong view where the end device
is confident.  With λ = 1 there is nothing unlabelled and this is plain supervised split
training.  Manual optimisation: one optimiser per device that holds tunable parameters.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecogen.config.params import HfslParams
from ecogen.split.chain import SplitChain, has_tunable
from ecogen.training.augment import pseudo_labels, strong, weak


class SplitSemiSupervised(L.LightningModule):
    def __init__(self, model: nn.Module, chain: SplitChain, cfg: HfslParams, seed: int) -> None:
        super().__init__()
        self.model = model  # registers every segment's parameters (device moves, state)
        self.chain = chain
        self.cfg = cfg
        self.automatic_optimization = False
        self.gen = torch.Generator().manual_seed(seed)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return [
            torch.optim.AdamW(
                [p for p in seg.parameters() if p.requires_grad], lr=self.cfg.lr, weight_decay=0.0
            )
            for seg in self.chain.segments
            if has_tunable(seg)
        ]

    def training_step(self, batch: list[Tensor], batch_idx: int) -> None:
        x, y = batch
        lab = y >= 0
        x_l, y_l, x_u = x[lab], y[lab], x[~lab]
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]

        pseudo = mask = None
        if len(x_u) and self.cfg.unlabelled_weight > 0:
            with torch.no_grad():
                logits_w, _ = self.chain.forward(weak(x_u, self.gen))
            pseudo, mask = pseudo_labels(logits_w, self.cfg.confidence_threshold)
            x_u = strong(x_u, self.gen)
        else:
            x_u = x_u[:0]
        inputs = torch.cat([weak(x_l, self.gen), x_u]) if len(x_l) else x_u
        if not len(inputs):
            return
        for opt in opts:
            opt.zero_grad()
        logits, trace = self.chain.forward(inputs, labels=y_l, train=True)
        y_end = trace.labels if trace.labels is not None else y_l  # labels as the end device got them
        n_l = len(y_end)
        loss = logits.new_zeros(())
        if n_l:
            loss = loss + F.cross_entropy(logits[:n_l], y_end)
        if pseudo is not None and mask is not None:
            per = F.cross_entropy(logits[n_l:], pseudo, reduction="none")
            loss = loss + self.cfg.unlabelled_weight * (per * mask).mean()
            self.log("mask_rate", mask.mean(), on_step=False, on_epoch=True, batch_size=len(mask))
        if not loss.requires_grad:
            return
        self.chain.backward(loss, trace)
        for opt in opts:
            opt.step()
        self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=len(inputs))
