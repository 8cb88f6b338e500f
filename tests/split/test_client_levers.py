"""Client-side levers of one cluster's local training: EMA teacher, logit adjustment, the cosine
client learning rate over the rounds, and the views the images are trained on."""

import math

import pytest
import torch

from ecogen.config.params import HfslParams, PeftParams
from ecogen.data.prepared import UNLABELLED, Split
from ecogen.federated.roles import ClusterClient
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.split.chain import SplitChain
from ecogen.split.channel import Channel
from ecogen.split.client_training import ClientTraining
from ecogen.split.semi_supervised import SplitSemiSupervised, fixmatch_loader
from ecogen.training.trainer import make_trainer

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=2, heads=2, num_classes=3)


def _data(labelled: int = 8, n: int = 24) -> Split:
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n,), generator=g)
    y[labelled:] = UNLABELLED
    return Split(x, y)


def _module(cfg: HfslParams, teacher: bool = False, **kw) -> tuple[SplitSemiSupervised, torch.nn.Module]:
    torch.manual_seed(0)
    edge = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    cluster = ClusterClient.of(edge, _data(), 3)
    t = None
    if teacher:
        import copy

        t_model, t_segments = copy.deepcopy((cluster.model, cluster.segments))
        t_model.requires_grad_(False)
        t = (t_model, SplitChain(t_segments, Channel()))
    chain = SplitChain(cluster.segments, Channel())
    return SplitSemiSupervised(
        cluster.model, chain, ClientTraining.of(cfg), seed=0, teacher=t, **kw
    ), cluster.model


def _fit(module: SplitSemiSupervised, cfg: HfslParams, steps: int) -> None:
    module.max_steps = steps
    make_trainer("cpu", max_epochs=-1).fit(module, fixmatch_loader(_data(), ClientTraining.of(cfg), seed=0))


def test_ema_teacher_follows_the_student_by_its_decay() -> None:
    cfg = HfslParams(batch_size=4, teacher="ema", ema_decay=0.5, confidence_threshold=0.0, lr=0.05)
    module, student = _module(cfg, teacher=True)
    assert module.teacher_model is not None
    pairs = [(t, s) for t, s in zip(module.teacher_model.parameters(), student.parameters(), strict=True)]
    tunable = [(t, s) for t, s in pairs if s.requires_grad]
    start = [s.detach().clone() for _, s in tunable]
    _fit(module, cfg, steps=1)
    for (t, s), s0 in zip(tunable, start, strict=True):
        # one step: t = 0.5·t0 + 0.5·s1, and t0 = s0
        assert torch.allclose(t, 0.5 * s0 + 0.5 * s.detach(), atol=1e-6)
    assert any(not torch.equal(s.detach(), s0) for (_, s), s0 in zip(tunable, start, strict=True))
    # frozen weights are never touched
    assert all(torch.equal(t, s) for t, s in pairs if not s.requires_grad)


def test_round_start_teacher_stays_fixed() -> None:
    cfg = HfslParams(batch_size=4, teacher="round_start", confidence_threshold=0.0, lr=0.05)
    module, _ = _module(cfg, teacher=True)
    assert module.teacher_model is not None
    before = [p.detach().clone() for p in module.teacher_model.parameters()]
    _fit(module, cfg, steps=3)
    assert all(torch.equal(a, b) for a, b in zip(before, module.teacher_model.parameters(), strict=True))


def test_logit_adjustment_adds_tau_log_prior() -> None:
    prior = torch.tensor([0.5, 0.3, 0.2])
    module, _ = _module(HfslParams(logit_adjustment=2.0), prior=prior)
    assert torch.allclose(module.logit_shift, 2.0 * prior.log())
    off, _ = _module(HfslParams(), prior=prior)
    assert off.logit_shift.abs().sum() == 0


@pytest.mark.parametrize(
    ("span", "step", "t"),
    [((0.0, 0.5), 0, 0.0), ((0.5, 1.0), 5, 0.75), ((0.75, 1.0), 10, 1.0)],  # round 1 of 2, mid round 2, end
)
def test_cosine_client_lr_spans_all_rounds(span: tuple[float, float], step: int, t: float) -> None:
    module, _ = _module(HfslParams(lr=0.01, lr_schedule="cosine"), span=span, max_steps=10)
    module.steps = step
    assert module._lr() == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * t)), abs=1e-12)
    constant, _ = _module(HfslParams(lr=0.01, lr_schedule="constant"), span=span, max_steps=10)
    assert constant._lr() == 0.01


def test_view_none_is_the_image_itself_and_weak_shifts_it() -> None:
    module, _ = _module(HfslParams())
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.equal(module._view(x, "none"), x)
    assert not torch.equal(module._view(x, "weak"), x)
