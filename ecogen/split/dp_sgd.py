"""Example-level DP-SGD for the participants of a round (Abadi et al., 2016, arXiv 1607.00133),
through the same split chain as every other client step.

Each step a private participant draws its batch by Poisson sampling (every labelled record in with
probability q, independently), computes each example's gradient of its tunable modules, clips it
to L2 norm C, sums, adds N(0, σ²C²) to every coordinate and divides by the expected batch size
q·n: the sampled Gaussian mechanism whose σ the RDP accountant of ``dp-accounting`` sets
(:mod:`ecogen.federated.example_dp`).  A participant without a plan (the edge's own: its data are
the edge's, it uploads nothing) takes its ordinary batches and the mean of their gradients: with
σ = 0 and C = ∞ the step is ordinary SGD's (the tests pin it).

Per-example gradients come from the chain itself: the stacked modules are copied once per
example (each copy a lane of one row, :func:`per_example_chain`), so one forward and one backward
through the links give each copy's gradient — one example's — as Opacus's expanded weights do.
Each example's activation and its gradient cross the links as their own message: the bytes are
those of the participant's batch, the message count is per example.  The clipping norm is taken
over the whole chain's tunable modules (flat clipping), so the devices of a cluster share each
example's squared norm (a scalar per device and example, not counted by the ledger).

The labelled loss only: an unlabelled loss or feature labels would let one record reach other
examples, which this accounting does not cover (configuration refuses them).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import IterableDataset, Sampler

from ecogen.data.prepared import Split, to_float
from ecogen.data.seeding import derive_seed
from ecogen.split.client_training import ClientTraining
from ecogen.split.semi_supervised import (
    FixMatchBatches,
    LaneBatch,
    StackedSemiSupervised,
    client_lr,
    view,
)
from ecogen.split.stacked import StackedChain


@dataclass(frozen=True)
class ExampleDp:
    """One participant's DP-SGD: the sampled Gaussian mechanism it runs every step."""

    noise_multiplier: float  # σ: the noise's std over the clip
    sample_rate: float  # q: each labelled record's chance to be in a step's batch
    clip: float  # C: L2 norm each example's gradient is clipped to
    expected_batch: float  # q·n: what the noised sum is divided by


Plans = Sequence[ExampleDp | None]  # per lane; None: an ordinary (non-private) participant


def per_example_chain(chain: StackedChain, owners: list[int]) -> StackedChain:
    """``chain`` with one lane per example (example i of lane ``owners[i]``), sharing its segments,
    each example's lane sending through its participant's channel and devices."""
    out = copy.copy(chain)  # a shallow copy: the same segments and stacked modules
    out.channels = [chain.channels[o] for o in owners]
    out.crosses = [chain.crosses[o] for o in owners]
    return out


def example_gradients(
    chain: StackedChain, inputs: list[Tensor], labels: list[Tensor], shift: Tensor | None = None
) -> tuple[dict[str, Tensor], Tensor]:
    """Each example's gradient of its cross-entropy: tunable name → ``(examples, ...)``, examples
    lane after lane (``inputs[c]``, ``labels[c]``: lane c's batch); and the summed loss.
    ``shift``: per-lane logit adjustment ``(lanes, classes)``."""
    counts = [len(x) for x in inputs]
    owners = [c for c, n in enumerate(counts) for _ in range(n)]
    tunable = {n: t for n, t in chain.stacked().items() if t.requires_grad}
    index = torch.tensor(owners, dtype=torch.long, device=next(iter(tunable.values())).device)
    if not owners:
        return {n: t.new_zeros(0, *t.shape[1:]) for n, t in tunable.items()}, torch.zeros(())
    copies = {n: t.detach()[index].requires_grad_(t.requires_grad) for n, t in chain.stacked().items()}
    lanes = per_example_chain(chain, owners)
    rows: list[Tensor | None] = [y[i : i + 1] for y in labels for i in range(len(y))]
    x = torch.cat(inputs).unsqueeze(1)  # (examples, 1, C, H, W): one row per lane
    logits, trace = lanes(x, [1] * len(owners), rows, train=True, params=copies)
    y = torch.cat([t for t in trace.labels if t is not None])  # as the end device received them
    logits = logits[:, 0] + (shift[index] if shift is not None and shift.dim() else 0.0)
    loss = F.cross_entropy(logits, y, reduction="sum")
    lanes.backward(loss, trace)
    grads = {n: g if (g := copies[n].grad) is not None else torch.zeros_like(copies[n]) for n in tunable}
    return grads, loss.detach()


def clipped_sums(grads: dict[str, Tensor], counts: list[int], clips: list[float]) -> dict[str, Tensor]:
    """Per lane, the sum of its examples' gradients, each scaled to L2 norm ``clips[lane]`` at most
    (its norm over every tunable tensor); ``grads`` as :func:`example_gradients` gives them."""
    first = next(iter(grads.values()))
    owners = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).to(first.device)
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads.values()]).sum(0).sqrt()
    limit = torch.tensor(clips, dtype=norms.dtype, device=norms.device)[owners]
    scale = (limit / (norms + 1e-6)).clamp(max=1.0)  # Opacus's flat clipping factor
    out = {}
    for name, g in grads.items():
        scaled = g * scale.view(-1, *[1] * (g.dim() - 1))
        out[name] = g.new_zeros(len(counts), *g.shape[1:]).index_add_(0, owners, scaled)
    return out


def noised_means(
    sums: dict[str, Tensor], plans: Plans, counts: list[int], gens: list[torch.Generator]
) -> dict[str, Tensor]:
    """Per lane, its clipped sum plus N(0, (σC)²) per coordinate, over q·n (a lane with a plan), or
    its plain mean over the examples it took (one without)."""
    out = {}
    for name, s in sums.items():
        lanes = []
        for c, plan in enumerate(plans):
            if plan is None:
                lanes.append(s[c] / max(counts[c], 1))
                continue
            noised = s[c]
            if plan.noise_multiplier > 0:  # (σ = 0: no noise, whatever C; 0·∞ would be NaN)
                noise = torch.randn(s[c].shape, generator=gens[c], dtype=s.dtype).to(s.device)
                noised = s[c] + noise * (plan.noise_multiplier * plan.clip)
            lanes.append(noised / plan.expected_batch)
        out[name] = torch.stack(lanes)
    return out


class PoissonSampled(Sampler[list[int]]):
    """Endless index batches of a split's labelled records, each record in with probability
    ``rate`` independently of the others (Poisson sampling, as the accountant assumes), seeded."""

    def __init__(self, labelled: Tensor, rate: float, seed: int) -> None:
        self.lab = torch.nonzero(labelled).flatten()
        self.rate, self.gen = rate, torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.lab[torch.rand(len(self.lab), generator=self.gen) < self.rate].tolist()


class ExampleDpBatches(IterableDataset):
    """``steps`` items, each every lane's next labelled batch: Poisson-sampled where the lane has a
    DP plan, its ordinary shuffled batches where it has none."""

    def __init__(self, splits: list[Split], cfg: ClientTraining, seeds: list[int], steps: int, plans: Plans):
        self.data = [(to_float(s.x), s.y) for s in splits]
        self.samplers: list[Sampler[list[int]]] = [
            FixMatchBatches(s.labelled, cfg.batch_size, cfg.unlabelled_ratio, seed, use_unlabelled=False)
            if plan is None
            else PoissonSampled(s.labelled, plan.sample_rate, derive_seed(seed, "dp-sgd", "sample"))
            for s, seed, plan in zip(splits, seeds, plans, strict=True)
        ]
        self.steps = steps

    def __iter__(self) -> Iterator[LaneBatch]:
        def endless(sampler: Sampler[list[int]]) -> Iterator[list[int]]:
            while True:
                yield from sampler

        lanes = [endless(s) for s in self.samplers]
        for _ in range(self.steps):
            yield [(x[idx], y[idx]) for (x, y), idx in zip(self.data, map(next, lanes), strict=True)]


class StackedDpSgd(StackedSemiSupervised):
    """The lanes' client step with DP-SGD on the lanes that have a plan (``plans``), the others
    ordinary; labelled batches from :class:`ExampleDpBatches`."""

    def __init__(
        self,
        chain: StackedChain,
        cfg: ClientTraining,
        seeds: list[int],
        priors: list[Tensor],
        steps: int,
        span: tuple[float, float],
        gradient_term: Callable[[list[Tensor]], Callable[[], None] | None] | None,
        plans: Plans,
    ) -> None:
        super().__init__(chain, cfg, seeds, priors, steps, span, gradient_term)
        self.plans = list(plans)
        self.noise = [torch.Generator().manual_seed(derive_seed(s, "dp-sgd", "noise")) for s in seeds]

    def training_step(self, batch: LaneBatch, batch_idx: int) -> None:
        views = zip(batch, self.gens, strict=True)
        inputs = [view(x, self.cfg.augment, g) if len(x) else x for (x, _), g in views]
        counts = [len(x) for x in inputs]
        opt = self.optimizers()
        assert not isinstance(opt, list)  # one optimiser over the stack
        opt.zero_grad()
        for group in opt.param_groups:
            group["lr"] = client_lr(self.cfg, self.span, self.steps, self.total)
        grads, loss = example_gradients(self.chain, inputs, [y for _, y in batch], self.logit_shift)
        clips = [math.inf if p is None else p.clip for p in self.plans]
        means = noised_means(clipped_sums(grads, counts, clips), self.plans, counts, self.noise)
        for name, t in self.chain.stacked().items():
            if t.requires_grad:
                t.grad = means[name]
        if self.gradient_term is not None:
            self.gradient_term()
        opt.step()
        self.steps += 1
        self.images = [i + n for i, n in zip(self.images, counts, strict=True)]
        taken = max(sum(counts), 1)
        self.log("train_loss", loss / taken, on_step=False, on_epoch=True, batch_size=taken)
