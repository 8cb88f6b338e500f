"""Client-side levers of the local training: EMA teacher, logit adjustment, the cosine client
learning rate over the rounds, and the views the images are trained on."""

import math

import pytest
import torch
from split_support import client_split
from torch.utils.data import DataLoader

from ecogen.config.params import HfslParams, PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.split.allocation import allocate_blocks
from ecogen.split.channel import Channel
from ecogen.split.client_training import ClientTraining
from ecogen.split.semi_supervised import StackedBatches, StackedSemiSupervised, client_lr, view
from ecogen.split.stacked import StackedChain
from ecogen.training.trainer import make_trainer

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=2, heads=2, num_classes=3)


def _module(cfg: HfslParams, prior: torch.Tensor | None = None, steps: int = 1) -> StackedSemiSupervised:
    """One cluster (three devices) as one lane."""
    torch.manual_seed(0)
    edge = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    names = [n for n, p in edge.named_parameters() if p.requires_grad]
    chain = StackedChain(edge, allocate_blocks(CFG.depth, 3), [Channel()], names)
    prior = prior if prior is not None else torch.full((3,), 1 / 3)
    return StackedSemiSupervised(chain, ClientTraining.of(cfg), [0], [prior], steps)


def _fit(module: StackedSemiSupervised) -> None:
    data = StackedBatches([client_split()], module.cfg, [0], module.total)
    make_trainer("cpu", max_epochs=1).fit(module, DataLoader(data, batch_size=None))


def test_ema_teacher_follows_the_student_by_its_decay() -> None:
    cfg = HfslParams(
        batch_size=4, unlabelled_weight=0.5, teacher="ema", ema_decay=0.5, confidence_threshold=0.0, lr=0.05
    )
    module = _module(cfg, steps=1)
    assert module.teacher is not None
    student = module.chain.stacked()
    start = {n: s.detach().clone() for n, s in student.items()}
    _fit(module)
    for n, s in student.items():
        # one step: t = 0.5·t0 + 0.5·s1, and t0 = s0
        assert torch.allclose(module.teacher[n], 0.5 * start[n] + 0.5 * s.detach(), atol=1e-6)
    assert any(not torch.equal(s.detach(), start[n]) for n, s in student.items())


def test_round_start_teacher_stays_fixed() -> None:
    cfg = HfslParams(
        batch_size=4, unlabelled_weight=0.5, teacher="round_start", confidence_threshold=0.0, lr=0.05
    )
    module = _module(cfg, steps=3)
    assert module.teacher is not None
    before = {n: t.clone() for n, t in module.teacher.items()}
    _fit(module)
    assert module.steps == 3
    assert all(torch.equal(before[n], t) for n, t in module.teacher.items())
    assert any(not torch.equal(before[n], s.detach()) for n, s in module.chain.stacked().items())


def test_logit_adjustment_adds_tau_log_prior() -> None:
    prior = torch.tensor([0.5, 0.3, 0.2])
    assert torch.allclose(_module(HfslParams(logit_adjustment=2.0), prior).logit_shift[0], 2.0 * prior.log())
    assert _module(HfslParams(), prior).logit_shift.abs().sum() == 0


@pytest.mark.parametrize(
    ("span", "step", "t"),
    [((0.0, 0.5), 0, 0.0), ((0.5, 1.0), 5, 0.75), ((0.75, 1.0), 10, 1.0)],  # round 1 of 2, mid round 2, end
)
def test_cosine_client_lr_spans_all_rounds(span: tuple[float, float], step: int, t: float) -> None:
    cosine = ClientTraining.of(HfslParams(lr=0.01, lr_schedule="cosine"))
    assert client_lr(cosine, span, step, 10) == pytest.approx(
        0.01 * 0.5 * (1 + math.cos(math.pi * t)), abs=1e-12
    )
    constant = ClientTraining.of(HfslParams(lr=0.01, lr_schedule="constant"))
    assert client_lr(constant, span, step, 10) == 0.01


def test_view_none_is_the_image_itself_and_weak_shifts_it() -> None:
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(0)
    assert torch.equal(view(x, "none", g), x)
    assert not torch.equal(view(x, "weak", g), x)
