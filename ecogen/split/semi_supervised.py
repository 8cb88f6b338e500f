"""Client training, FixMatch-style (Sohn et al., 2020, arXiv 2001.07685): one step for every
participant of a round, over a lane axis.

Each batch holds ``batch_size`` labelled images and ``μ × batch_size`` unlabelled ones
(:class:`FixMatchBatches`).  Labelled images train with cross-entropy on a weak view; each
unlabelled image gets a pseudo-label from its weak view (a forward-only pass) and trains on its
strong view where the end device is confident (threshold τ, loss weight ``unlabelled_weight``).
With λ = 1 there is nothing unlabelled and this is plain supervised training.  With
``mixup_weight`` > 0 each lane's pseudo-labelling views are also mixed in pairs and train towards
their pseudo-labels mixed alike (SemiFL's "mix" loss, :mod:`ecogen.training.mixup`), as rows after
the lane's own, through the same links.

:class:`StackedSemiSupervised` trains the lanes of a :class:`~ecogen.split.stacked.StackedChain`
— one participant each — at once: each lane draws its batches from its own sampler, its views from
its own generator, its pseudo-labels from its own labeller, its logit shift from its own prior;
the lanes' losses are summed, so each lane's gradients are its own loss's.  The optimiser steps
the stacked parameters: AdamW and SGD act elementwise, so one optimiser over the stack is each
lane's optimiser side by side.  All lanes take the same number of steps at the same learning rate
(:mod:`ecogen.federated.drivers` groups them so; the serial driver runs one lane at a time).

Views (``augment``, ``unlabelled_view``) and the pseudo-labelling ``teacher`` are levers of
:class:`~ecogen.split.client_training.ClientTraining`: the teacher is a frozen copy of the
delivered modules (or their exponential moving average) run through the same links.  With
``mae_weight`` > 0 each step also reconstructs the batch's unlabelled images (masked, from their
visible patches) through the same chain, the FM's frozen decoder on the end device
(:mod:`ecogen.split.reconstruction`), and adds ``mae_weight`` × that loss.  A method's
``gradient_term`` (FedProx's pull towards the round's start, say) runs after each backward pass,
before the optimiser steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import IterableDataset, Sampler

from ecogen.data.prepared import Split, to_float
from ecogen.data.seeding import derive_seed
from ecogen.split.client_training import ClientTraining
from ecogen.split.reconstruction import ChainReconstruction
from ecogen.split.stacked import StackedChain, StackedTrace, pad_stack
from ecogen.training.augment import strong, weak
from ecogen.training.mixup import mix_draw, mixup
from ecogen.training.pseudo_label import PseudoLabeller


class FixMatchBatches(Sampler[list[int]]):
    """Index batches of ``batch_size`` labelled + ``ratio × batch_size`` unlabelled samples.

    One epoch passes over the unlabelled samples once; the labelled ones are reshuffled and
    cycled as often as needed.  Without unlabelled samples (λ = 1, or unlabelled samples not
    used) an epoch is one pass over the labelled ones.  Seeded per epoch.
    """

    def __init__(
        self, labelled: Tensor, batch_size: int, ratio: int, seed: int, use_unlabelled: bool
    ) -> None:
        self.lab = torch.nonzero(labelled).flatten()
        self.unl = torch.nonzero(~labelled).flatten() if use_unlabelled else labelled.new_zeros(0).long()
        self.batch_size, self.ratio, self.seed, self.epoch = batch_size, ratio, seed, 0
        if not len(self.lab) and not len(self.unl):
            raise ValueError("a client with no labelled samples and no usable unlabelled ones cannot train")

    def __len__(self) -> int:
        if len(self.unl):
            return math.ceil(len(self.unl) / (self.ratio * self.batch_size))
        return math.ceil(len(self.lab) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        self.epoch += 1
        lab = self.lab[torch.randperm(len(self.lab), generator=g)]
        if not len(self.unl):
            for b in range(len(self)):
                yield lab[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            return
        unl = self.unl[torch.randperm(len(self.unl), generator=g)]
        step = self.ratio * self.batch_size
        labelled = self._cycle(g)
        for b in range(len(self)):
            take = [next(labelled) for _ in range(self.batch_size)] if len(self.lab) else []
            yield take + unl[b * step : (b + 1) * step].tolist()

    def _cycle(self, g: torch.Generator) -> Iterator[int]:
        while True:
            yield from self.lab[torch.randperm(len(self.lab), generator=g)].tolist()


def client_lr(cfg: ClientTraining, span: tuple[float, float], steps: int, total: int) -> float:
    """The client learning rate after ``steps`` of ``total`` local steps, ``span`` being the share
    of all rounds this local training covers (one cosine decay over every round, or constant)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    start, end = span
    t = start + (end - start) * min(1.0, steps / total)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def view(x: Tensor, kind: str, gen: torch.Generator) -> Tensor:
    """The ``strong``, ``weak`` or (anything else) unchanged view of a batch, drawn from ``gen``."""
    if kind == "strong":
        return strong(x, gen)
    return weak(x, gen) if kind == "weak" else x


def mix_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """SemiFL's mix loss: cross-entropy against the mixed pseudo-labels (class probabilities),
    counted where a row's first image passed τ (``mask``), mean over every mix row."""
    return (F.cross_entropy(logits, targets, reduction="none") * mask).mean()


def client_loss(
    logits: Tensor, labels: Tensor, pseudo: Tensor | None, mask: Tensor | None, weight: float
) -> Tensor:
    """Cross-entropy on the first ``len(labels)`` rows (the labelled images), plus ``weight`` × the
    masked pseudo-label cross-entropy on the rest (mean over every unlabelled row)."""
    n_l = len(labels)
    loss = logits.new_zeros(())
    if n_l:
        loss = loss + F.cross_entropy(logits[:n_l], labels)
    if pseudo is not None and mask is not None:
        per = F.cross_entropy(logits[n_l:], pseudo, reduction="none")
        loss = loss + weight * (per * mask).mean()
    return loss


LaneBatch = list[tuple[Tensor, Tensor]]  # per lane: (images, labels; -1 where unlabelled)


class StackedBatches(IterableDataset):
    """``steps`` items, each every lane's next batch (its sampler's epochs one after another)."""

    def __init__(self, splits: list[Split], cfg: ClientTraining, seeds: list[int], steps: int) -> None:
        self.data = [(to_float(s.x), s.y) for s in splits]
        use = cfg.uses_unlabelled
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
        reconstruction: ChainReconstruction | None = None,
    ) -> None:
        super().__init__()
        self.chain = chain
        self.reconstruction: ChainReconstruction | None = None
        if cfg.mae_weight > 0:  # the MAE loss on the unlabelled images, through the same chain
            if reconstruction is None:
                raise ValueError("hfsl.mae_weight > 0 needs the FM's decoder side (ChainReconstruction)")
            self.reconstruction = reconstruction
            self.mae_gens = [torch.Generator().manual_seed(derive_seed(s, "mae")) for s in seeds]
        self.cfg, self.span, self.total = cfg, span, steps
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        # SemiFL's mix (mixup_weight): λ and the partners from a generator of each lane's own
        self.mix_gens = [torch.Generator().manual_seed(derive_seed(s, "mixup")) for s in seeds]
        self.mix_gens = self.mix_gens if cfg.mixup_weight > 0 else []
        self.classes = len(priors[0]) if priors else 0
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
        params = [p for p in self.chain.stacked().values() if p.requires_grad]  # the lanes' tunable ones
        if self.cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.cfg.lr, momentum=0.9)
        return torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=0.0)

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher = {n: t.to(self.device) for n, t in self.teacher.items()}

    def training_step(self, batch: LaneBatch, batch_idx: int) -> None:
        cfg = self.cfg
        split = [(x[y >= 0], y[y >= 0], x[y < 0]) for x, y in batch]
        unlabelled = cfg.semi_supervised
        # views in the serial order: the pseudo-labelling view, the unlabelled one, the labelled one
        teacher_views, unl_views, lab_views = [], [], []
        for (x_l, _, x_u), g in zip(split, self.gens, strict=True):
            x_u = x_u if unlabelled else x_u[:0]
            teacher_views.append(view(x_u, cfg.augment, g) if len(x_u) else x_u)
            unl_views.append(view(x_u, cfg.unlabelled_view, g) if len(x_u) else x_u)
            lab_views.append(view(x_l, cfg.augment, g) if len(x_l) else x_l)
        pseudo = self._pseudo_labels(teacher_views)
        mixed = self._mixed(teacher_views, pseudo)  # SemiFL's mix rows, after each lane's own
        sizes = [len(lab) + len(unl) for lab, unl in zip(lab_views, unl_views, strict=True)]
        inputs = [
            torch.cat([lab, unl] if mix is None else [lab, unl, mix[0]])
            for lab, unl, mix in zip(lab_views, unl_views, mixed, strict=True)
        ]
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
        loss = self._labelled_loss(logits, trace, [y for _, y, _ in split], sizes, pseudo)
        if self.mix_gens:
            loss = loss + cfg.mixup_weight * self._mix_loss(logits, sizes, counts, pseudo, mixed)
        traces = [trace]
        if (mae := self._reconstruction([x_u for _, _, x_u in split])) is not None:
            loss = loss + cfg.mae_weight * mae[0]
            traces.append(mae[1])
        if not loss.requires_grad:
            return
        self.chain.backward(loss, *traces)
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
            "train_loss", loss.detach() / len(counts), on_step=False, on_epoch=True, batch_size=sum(counts)
        )

    def _pseudo_labels(self, views: list[Tensor]) -> list[tuple[Tensor, Tensor] | None]:
        """Each lane's (pseudo-labels, mask) from the teacher's pass over its unlabelled ``views``."""
        pseudo: list[tuple[Tensor, Tensor] | None] = [None] * len(views)
        n_u = [len(v) for v in views]
        if max(n_u):
            with torch.no_grad():
                logits_w, _ = self.chain(pad_stack(views, max(n_u)), n_u, params=self.teacher)
            for c in range(len(views)):
                if n_u[c]:
                    pseudo[c] = self.labellers[c](logits_w[c, : n_u[c]])
        return pseudo

    def _labelled_loss(
        self,
        logits: Tensor,
        trace: StackedTrace,
        labels: list[Tensor],
        counts: list[int],
        pseudo: list[tuple[Tensor, Tensor] | None],
    ) -> Tensor:
        """The lanes' client losses, summed: each lane's on its own rows, with the labels its end
        device received (``labels``, the lane's own, where nothing crossed a link)."""
        shift: Tensor = self.logit_shift
        logits = logits + (shift[:, None] if shift.dim() else shift)
        losses = []
        for c in range(self.chain.lanes):
            received = trace.labels[c]
            y_end = received if received is not None else labels[c]
            lane_pseudo = pseudo[c]
            p, m = lane_pseudo if lane_pseudo is not None else (None, None)
            losses.append(client_loss(logits[c, : counts[c]], y_end, p, m, self.cfg.unlabelled_weight))
        return torch.stack(losses).sum()

    def _mixed(
        self, views: list[Tensor], pseudo: list[tuple[Tensor, Tensor] | None]
    ) -> list[tuple[Tensor, Tensor] | None]:
        """Each lane's mix rows and their targets (``mixup_weight`` > 0): its pseudo-labelling views
        mixed with each other (:func:`~ecogen.training.mixup.mixup`, λ and the partners drawn from the
        lane's mixup generator), the targets the same mix of their pseudo-labels as class
        probabilities; None where the mix is off or the lane drew no unlabelled image."""
        out: list[tuple[Tensor, Tensor] | None] = [None] * len(views)
        for c, (x, lane, g) in enumerate(zip(views, pseudo, self.mix_gens, strict=False)):
            if lane is not None:
                labels = lane[0]
                probs = labels if labels.is_floating_point() else F.one_hot(labels, self.classes).float()
                lam, perm = mix_draw(len(x), self.cfg.mixup_alpha, g)
                out[c] = mixup(x, probs, lam, perm)
        return out

    def _mix_loss(
        self,
        logits: Tensor,
        sizes: list[int],
        counts: list[int],
        pseudo: list[tuple[Tensor, Tensor] | None],
        mixed: list[tuple[Tensor, Tensor] | None],
    ) -> Tensor:
        """The lanes' mix losses, summed: each lane's on its mix rows (its rows from ``sizes[c]`` to
        ``counts[c]``), counted where the row's first image's pseudo-label passed τ."""
        shift: Tensor = self.logit_shift
        logits = logits + (shift[:, None] if shift.dim() else shift)
        total = logits.new_zeros(())
        for c, (lane, mix) in enumerate(zip(pseudo, mixed, strict=True)):
            if lane is not None and mix is not None:
                total = total + mix_loss(logits[c, sizes[c] : counts[c]], mix[1], lane[1])
        return total

    def _reconstruction(self, images: list[Tensor]) -> tuple[Tensor, StackedTrace] | None:
        """The lanes' MAE losses on their unlabelled ``images``, summed, and the pass's trace
        (``hfsl.mae_weight``); None when it is off or no lane drew an unlabelled image."""
        rec = self.reconstruction
        if rec is None or not max(len(x) for x in images):
            return None
        noise = [rec.noise(len(x), g).to(x.device) for x, g in zip(images, self.mae_gens, strict=True)]
        losses, trace = rec.losses(self.chain, images, noise)
        rows = sum(len(x) for x in images)
        self.log(
            "mae_loss", losses.detach().sum() / len(images), on_step=False, on_epoch=True, batch_size=rows
        )
        return losses.sum(), trace
