"""Every lane of a :class:`~ecogen.split.stacked.StackedChain` trains its local steps at once.

The same client training as :class:`~ecogen.split.semi_supervised.SplitSemiSupervised`, lane by
lane: each lane draws its batches from its own :class:`~ecogen.split.semi_supervised.FixMatchBatches`
(seeded as the serial driver seeds it), its views from its own generator, its pseudo-labels from
its own labeller, its logit shift from its own prior; the lanes' losses are summed, so each
lane's gradients are its own loss's.  The optimiser steps the stacked parameters: AdamW and SGD
act elementwise, so one optimiser over the stack is each lane's optimiser side by side.  All
lanes take the same number of steps at the same learning rate (the driver groups them so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from ecogen.data.prepared import Split, to_float
from ecogen.split.client_training import ClientTraining
from ecogen.split.semi_supervised import FixMatchBatches, client_loss, client_lr, make_optimizer, view
from ecogen.split.stacked import StackedChain, pad_stack
from ecogen.training.pseudo_label import PseudoLabeller

LaneBatch = list[tuple[Tensor, Tensor]]  # per lane: (images, labels; -1 where unlabelled)


class StackedBatches(IterableDataset):
    """``steps`` items, each every lane's next batch (its sampler's epochs one after another)."""

    def __init__(self, splits: list[Split], cfg: ClientTraining, seeds: list[int], steps: int) -> None:
        self.data = [(to_float(s.x), s.y) for s in splits]
        use = cfg.semi_supervised
        self.samplers = [
            FixMatchBatches(s.labelled, cfg.batch_size, cfg.unlabelled_ratio, seed, use_unlabelled=use)
            for s, seed in zip(splits, seeds, strict=True)
        ]
        self.steps = steps

    def __iter__(self) -> Iterator[LaneBatch]:
        def endless(sampler: FixMatchBatches) -> Iterator[list[int]]:
            while True:
                yield from sampler

        lanes = [endless(s) for s in self.samplers]
        for _ in range(self.steps):
            yield [(x[idx], y[idx]) for (x, y), idx in zip(self.data, map(next, lanes), strict=True)]


class StackedSemiSupervised(L.LightningModule):
    logit_shift: Tensor  # a buffer: (lanes, num_classes) or a zero scalar

    def __init__(
        self,
        chain: StackedChain,
        cfg: ClientTraining,
        seeds: list[int],
        priors: list[Tensor],
        steps: int,
        span: tuple[float, float] = (0.0, 1.0),
        gradient_term: Callable[[list[Tensor]], Callable[[], None] | None] | None = None,
    ) -> None:
        super().__init__()
        self.chain = chain
        self.cfg, self.span, self.total = cfg, span, steps
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.labellers = [PseudoLabeller(cfg.pseudo_labels, cfg.confidence_threshold, p) for p in priors]
        shift = torch.stack([cfg.logit_adjustment * p.log() for p in priors])
        self.register_buffer("logit_shift", shift if cfg.logit_adjustment > 0 else torch.zeros(()))
        trainable = [p for p in chain.stacked().values() if p.requires_grad]
        self.gradient_term = gradient_term(trainable) if gradient_term else None
        # a frozen copy of the delivered modules teaches (round_start, ema), else the lanes themselves
        self.teacher: dict[str, Tensor] | None = None
        if cfg.separate_teacher:
            self.teacher = {n: t.detach().clone() for n, t in chain.stacked().items()}
        self.automatic_optimization = False
        self.steps = 0
        self.images = [0] * chain.lanes  # images each lane trained on

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return make_optimizer([p for p in self.chain.stacked().values() if p.requires_grad], self.cfg)

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher = {n: t.to(self.device) for n, t in self.teacher.items()}

    def training_step(self, batch: LaneBatch, batch_idx: int) -> None:
        cfg = self.cfg
        lanes = range(self.chain.lanes)
        split = [(x[y >= 0], y[y >= 0], x[y < 0]) for x, y in batch]
        unlabelled = cfg.semi_supervised
        # views in the serial order: the pseudo-labelling view, the unlabelled one, the labelled one
        teacher_views, unl_views, lab_views = [], [], []
        for (x_l, _, x_u), g in zip(split, self.gens, strict=True):
            x_u = x_u if unlabelled else x_u[:0]
            teacher_views.append(view(x_u, cfg.augment, g) if len(x_u) else x_u)
            unl_views.append(view(x_u, cfg.unlabelled_view, g) if len(x_u) else x_u)
            lab_views.append(view(x_l, cfg.augment, g) if len(x_l) else x_l)
        pseudo: list[tuple[Tensor, Tensor] | None] = [None] * len(split)
        n_u = [len(v) for v in teacher_views]
        if max(n_u):
            with torch.no_grad():
                logits_w, _ = self.chain(pad_stack(teacher_views, max(n_u)), n_u, params=self.teacher)
            for c in lanes:
                if n_u[c]:
                    pseudo[c] = self.labellers[c](logits_w[c, : n_u[c]])
        inputs = [torch.cat([lab, unl]) for lab, unl in zip(lab_views, unl_views, strict=True)]
        counts = [len(i) for i in inputs]
        if not min(counts):
            raise RuntimeError(
                "a lane drew an empty batch; the serial driver would skip it: use driver serial"
            )
        opt = self.optimizers()
        assert not isinstance(opt, list)  # one optimiser over the stack
        opt.zero_grad()
        for group in opt.param_groups:
            group["lr"] = client_lr(cfg, self.span, self.steps, self.total)
        logits, trace = self.chain(
            pad_stack(inputs, max(counts)), counts, [y for _, y, _ in split], train=True
        )
        shift: Tensor = self.logit_shift
        logits = logits + (shift[:, None] if shift.dim() else shift)
        losses = []
        for c in lanes:
            received = trace.labels[c]
            y_end = received if received is not None else split[c][1]
            lane_pseudo = pseudo[c]
            p, m = lane_pseudo if lane_pseudo is not None else (None, None)
            losses.append(client_loss(logits[c, : counts[c]], y_end, p, m, cfg.unlabelled_weight))
        loss = torch.stack(losses).sum()
        if not loss.requires_grad:
            return
        self.chain.backward(loss, trace)
        if self.gradient_term is not None:
            self.gradient_term()
        opt.step()
        if self.teacher is not None and cfg.teacher == "ema":
            with torch.no_grad():
                for n, s in self.chain.stacked().items():
                    if s.requires_grad:
                        self.teacher[n].lerp_(s.detach(), 1.0 - cfg.ema_decay)
        self.steps += 1
        self.images = [i + n for i, n in zip(self.images, counts, strict=True)]
        self.log(
            "train_loss", loss.detach() / len(losses), on_step=False, on_epoch=True, batch_size=sum(counts)
        )
