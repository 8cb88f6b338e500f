"""``run_relay``: what the cloud does with the modules the edges upload — and nothing else.

Its inputs are the FM, the edges' :class:`~ecogen.split.channel.TunableModules` (model states,
checked against the PEFT layout) with, from edges that aggregated by FedEx-LoRA, the changes to
their frozen LoRA weights (:class:`~ecogen.split.channel.BaseCorrection`), for the ``routed``
weighting the edges' :class:`~ecogen.split.channel.StylePrototypes` (class means of FM
features), and the cloud's own public pool.  No edge or client sample can reach it: there is no
parameter to pass one through, and each upload must be exactly the tunable parameters of an edge
model.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ecogen.config.params import PeftParams, RelayParams
from ecogen.data.prepared import to_float
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.tunable import freeze
from ecogen.relay.distill import SoftTargetModule, TeacherEnsemble, soft_targets_loader
from ecogen.relay.naive import edge_model, naive_relay
from ecogen.relay.routing import StyleRouter
from ecogen.relay.transfer import transfer_set
from ecogen.split.channel import BaseCorrection, StylePrototypes, TunableModules
from ecogen.training.trainer import History, make_trainer

log = logging.getLogger("ecogen.relay")


@dataclass
class RelayOutcome:
    student: ViT  # the relayed FM encoder with its shared head
    naive: ViT  # the naive relay (parameter averaging), for comparison
    transfer_images: int
    teacher_weight: dict[str, float]  # each edge's mean weight over the transfer set
    teachers: dict[str, nn.Module] = field(default_factory=dict)  # the edges' models, rebuilt
    history: dict[str, list[float]] = field(default_factory=dict)


def relayed_fm(fm: MaskedAutoencoder, encoder: ViT) -> MaskedAutoencoder:
    """The FM to deliver next: the relayed encoder with the FM's own generative decoder."""
    out = copy.deepcopy(fm)
    out.encoder = copy.deepcopy(encoder)
    return out


def _check(
    uploads: Mapping[str, TunableModules],
    public: Tensor,
    cfg: RelayParams,
    prototypes: Mapping[str, StylePrototypes] | None,
) -> None:
    if public.dtype != torch.uint8 or public.dim() != 4:
        raise TypeError("the public pool must be the cloud's uint8 images (N, C, H, W)")
    if not uploads:
        raise ValueError("the relay needs the modules of at least one edge")
    for name, upload in uploads.items():
        if not isinstance(upload, TunableModules):
            raise TypeError(f"edge {name} uploaded {type(upload).__name__}; only TunableModules are accepted")
    if cfg.weighting == "routed":
        if missing := [n for n in uploads if not isinstance((prototypes or {}).get(n), StylePrototypes)]:
            raise ValueError(f"the routed weighting needs every edge's StylePrototypes; missing: {missing}")


def _teachers(
    fm: MaskedAutoencoder,
    uploads: Mapping[str, TunableModules],
    peft: PeftParams,
    seed: int,
    bases: Mapping[str, BaseCorrection],
) -> dict[str, nn.Module]:
    """Every edge's model, rebuilt from the FM, its modules and its changes to frozen weights."""
    if stray := [n for n, b in bases.items() if n not in uploads or not isinstance(b, BaseCorrection)]:
        raise TypeError(f"base corrections must be BaseCorrection from edges that uploaded modules: {stray}")
    return {
        name: edge_model(fm, peft, u.state, seed, bases[name].state if name in bases else None)
        for name, u in uploads.items()
    }


def run_relay(
    fm: MaskedAutoencoder,
    uploads: Mapping[str, TunableModules],
    public: Tensor,
    cfg: RelayParams,
    peft: PeftParams,
    accelerator: str,
    seed: int,
    prototypes: Mapping[str, StylePrototypes] | None = None,
    bases: Mapping[str, BaseCorrection] | None = None,
) -> RelayOutcome:
    """``bases``: the changes to frozen LoRA weights the edges that made some uploaded (FedEx-LoRA)."""
    _check(uploads, public, cfg, prototypes)
    bases = bases or {}
    teachers = _teachers(fm, uploads, peft, seed, bases)
    router = None
    if cfg.weighting == "routed" and prototypes is not None:
        router = StyleRouter(copy.deepcopy(fm.encoder), [prototypes[n].tensor for n in uploads])
    naive = naive_relay(fm, uploads, peft, seed, bases)
    x = transfer_set(
        fm, to_float(public), cfg.public_samples, cfg.synthetic_samples, cfg.synthetic_mask_ratio, seed
    )
    log.info(
        "relay: %d teachers, transfer set %d images (%d synthesised), weighting %s",
        len(teachers),
        len(x),
        max(0, len(x) - min(cfg.public_samples, len(public))),
        cfg.weighting,
    )
    predictor = make_trainer(accelerator, max_epochs=1)
    batches = predictor.predict(
        TeacherEnsemble(list(teachers.values()), cfg.weighting, cfg.temperature, router),
        DataLoader(TensorDataset(x), batch_size=cfg.batch_size),
    )
    assert batches is not None
    targets = torch.cat([b[0] for b in batches])  # type: ignore[index]
    weights = torch.cat([b[1] for b in batches], dim=1)  # type: ignore[index]
    student = copy.deepcopy(naive).train()  # start from the averaged modules, then distil
    if cfg.train == "head":
        freeze(student)
        student.head.requires_grad_(True)
    else:
        student.requires_grad_(True)
    history = History("relay")
    make_trainer(accelerator, cfg.epochs, [history]).fit(
        SoftTargetModule(student, cfg.lr, cfg.temperature),
        soft_targets_loader(x, targets, cfg.batch_size, seed),
    )
    student.cpu().eval()
    return RelayOutcome(
        student=student,
        naive=naive.cpu().eval(),
        transfer_images=len(x),
        teacher_weight={name: float(w.mean()) for name, w in zip(uploads, weights, strict=True)},
        teachers=teachers,
        history=history.series,
    )
