"""One client cluster's local training, FixMatch-style (Sohn et al., 2020, arXiv 2001.07685).

Each batch holds ``batch_size`` labelled images and ``μ × batch_size`` unlabelled ones
(:class:`FixMatchBatches`).  Labelled images train with cross-entropy on a weak view; each
unlabelled image gets a pseudo-label from its weak view (a forward-only pass) and trains on its
strong view where the end device is confident (threshold τ, loss weight ``unlabelled_weight``).
With λ = 1 there is nothing unlabelled and this is plain supervised training.

The same module trains through a split :class:`~ecogen.split.chain.SplitChain` (EcoGen, SplitFed)
or through the whole model in one place (:class:`WholeModel`: FedAvg, local, the oracle).
Views (``augment``, ``unlabelled_view``) and the pseudo-labelling ``teacher`` are levers of
``HfslParams``: the teacher is another copy of the same segments on the same devices (the
delivered modules, frozen, or their exponential moving average), run through the same links.

Manual optimisation: one optimiser per device that holds trainable parameters.  A method's
``gradient_term`` (FedProx's pull towards the round's start, say) runs after each backward pass,
on each device's own gradients, before the optimisers step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from ecogen.data.prepared import Split, to_float
from ecogen.split.chain import SplitChain, SplitTrace, has_tunable
from ecogen.split.client_training import ClientTraining
from ecogen.training.augment import strong, weak
from ecogen.training.pseudo_label import PseudoLabeller


class WholeModel:
    """The unsplit path with :class:`SplitChain`'s interface: one device holds everything."""

    def __init__(self, model: nn.Module) -> None:
        self.segments = [model]

    def forward(
        self, x: Tensor, labels: Tensor | None = None, train: bool = False
    ) -> tuple[Tensor, SplitTrace]:
        return self.segments[0](x), SplitTrace(labels=labels)

    def backward(self, loss: Tensor, trace: SplitTrace) -> None:
        loss.backward()


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


def fixmatch_loader(split: Split, cfg: ClientTraining, seed: int) -> DataLoader:
    """float images in [-1, 1] with labels (-1 where unlabelled), batched by :class:`FixMatchBatches`."""
    ds = TensorDataset(to_float(split.x), split.y)
    sampler = FixMatchBatches(
        split.labelled, cfg.batch_size, cfg.unlabelled_ratio, seed, use_unlabelled=cfg.semi_supervised
    )
    return DataLoader(ds, batch_sampler=sampler, generator=torch.Generator().manual_seed(seed))


def make_optimizer(params: list[nn.Parameter], cfg: ClientTraining) -> torch.optim.Optimizer:
    """One device's optimiser over its tunable parameters (``cfg.optimizer``)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)


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


class SplitSemiSupervised(L.LightningModule):
    logit_shift: Tensor  # a buffer: (num_classes,) or a zero scalar

    def __init__(
        self,
        model: nn.Module,
        chain: SplitChain | WholeModel,
        cfg: ClientTraining,
        seed: int,
        prior: Tensor | None = None,  # the client's labelled class frequencies (aligned mode)
        max_steps: int | None = None,  # stop after this many client steps (None: the epochs given)
        teacher: tuple[nn.Module, SplitChain | WholeModel] | None = None,  # frozen copy; None: self
        span: tuple[float, float] = (0.0, 1.0),  # the share of all rounds this local training covers
        gradient_term: Callable[[], None] | None = None,  # after backward, before the optimisers step
    ) -> None:
        super().__init__()
        self.model = model  # registers every segment's parameters (device moves, state)
        self.chain = chain
        self.teacher_model = teacher[0] if teacher else None  # registered: moves with the module
        self.teacher = teacher[1] if teacher else chain
        # EMA pairs: (teacher parameter, the student parameter it follows)
        self.ema = (
            [
                (t, s)
                for t, s in zip(teacher[0].parameters(), model.parameters(), strict=True)
                if s.requires_grad
            ]
            if teacher and cfg.teacher == "ema"
            else []
        )
        self.cfg = cfg
        self.span = span
        self.labeller = PseudoLabeller(cfg.pseudo_labels, cfg.confidence_threshold, prior)
        # τ·log π added to the training logits (logit adjustment; zeros when off or no prior)
        shift = cfg.logit_adjustment * prior.log() if prior is not None else torch.zeros(())
        self.register_buffer("logit_shift", shift if cfg.logit_adjustment > 0 else torch.zeros(()))
        self.automatic_optimization = False
        self.gen = torch.Generator().manual_seed(seed)
        self.gradient_term = gradient_term
        self.steps = 0  # client steps taken, and images trained on (client compute)
        self.images = 0
        # Lightning's own max_steps counts every optimizer.step(), one per device here: count ours
        self.max_steps = max_steps

    def on_train_batch_start(self, batch: object, batch_idx: int) -> int | None:
        if self.max_steps is not None and self.steps >= self.max_steps:
            self.trainer.should_stop = True
            return -1  # ends this epoch; should_stop ends the fit
        return None

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return [
            make_optimizer([p for p in seg.parameters() if p.requires_grad], self.cfg)
            for seg in self.chain.segments
            if has_tunable(seg)
        ]

    def _lr(self) -> float:
        total = self.max_steps or max(1, int(self.trainer.estimated_stepping_batches))
        return client_lr(self.cfg, self.span, self.steps, total)

    def _view(self, x: Tensor, kind: str) -> Tensor:
        return view(x, kind, self.gen)

    def training_step(self, batch: list[Tensor], batch_idx: int) -> None:
        x, y = batch
        lab = y >= 0
        x_l, y_l, x_u = x[lab], y[lab], x[~lab]
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]

        pseudo = mask = None
        if len(x_u) and self.cfg.semi_supervised:
            with torch.no_grad():
                logits_w, _ = self.teacher.forward(self._view(x_u, self.cfg.augment))
            pseudo, mask = self.labeller(logits_w)
            x_u = self._view(x_u, self.cfg.unlabelled_view)
        else:
            x_u = x_u[:0]
        inputs = torch.cat([self._view(x_l, self.cfg.augment), x_u]) if len(x_l) else x_u
        if not len(inputs):
            return
        lr = self._lr()
        for opt in opts:
            opt.zero_grad()
            for group in opt.param_groups:
                group["lr"] = lr
        logits, trace = self.chain.forward(inputs, labels=y_l, train=True)
        logits = logits + self.logit_shift  # on the end device, which knows its client's prior
        y_end = trace.labels if trace.labels is not None else y_l  # labels as the end device got them
        loss = client_loss(logits, y_end, pseudo, mask, self.cfg.unlabelled_weight)
        if mask is not None:
            self.log("mask_rate", mask.mean(), on_step=False, on_epoch=True, batch_size=len(mask))
        if not loss.requires_grad:
            return
        self.chain.backward(loss, trace)
        if self.gradient_term is not None:
            self.gradient_term()
        for opt in opts:
            opt.step()
        with torch.no_grad():
            for t, s in self.ema:
                t.lerp_(s.detach(), 1.0 - self.cfg.ema_decay)
        self.steps += 1
        self.images += len(inputs)
        self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=len(inputs))
