"""The naive relay, for comparison: plain parameter averaging of the edges' modules into the FM."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from peft import PeftModel
from torch import Tensor, nn

from ecogen.config.params import PeftParams
from ecogen.federated.aggregate import fedavg
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import add_base_delta, build_edge_model
from ecogen.peft.tunable import load_tunable_state
from ecogen.split.channel import BaseCorrection, TunableModules


def average_uploads(uploads: Mapping[str, TunableModules]) -> dict[str, Tensor]:
    """Every key's unweighted mean over the edges (each edge one vote)."""
    return fedavg([(u.state, 1) for u in uploads.values()])


def merge_into_backbone(model: nn.Module) -> ViT:
    """A plain ViT computing what ``model`` computes: LoRA merged into the weights; head as trained."""
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    if not isinstance(model, ViT) or any("Prompted" in type(b).__name__ for b in model.blocks):
        raise ValueError("the relay folds LoRA or head-only modules into the FM; prompts cannot be folded")
    return model


def edge_model(
    fm: MaskedAutoencoder,
    peft: PeftParams,
    state: Mapping[str, Tensor],
    seed: int,
    base: Mapping[str, Tensor] | None = None,
) -> nn.Module:
    """An edge's domain model rebuilt in the cloud from the FM and the modules it uploaded, and
    ``base``, the changes FedEx-LoRA made to its frozen LoRA weights (``ecogen.peft.edge.base_delta``)."""
    model = build_edge_model(fm, peft, seed)
    load_tunable_state(model, dict(state))  # refuses anything that is not exactly these modules
    add_base_delta(model, base or {})
    return model.eval()


def average_bases(bases: Mapping[str, BaseCorrection], edges: int) -> dict[str, Tensor]:
    """The mean over ``edges`` edges of their changes to frozen LoRA weights (none sent: zero)."""
    shapes = {k: v for b in bases.values() for k, v in b.state.items()}
    full = [{k: b.state.get(k, torch.zeros_like(v)) for k, v in shapes.items()} for b in bases.values()]
    full += [{k: torch.zeros_like(v) for k, v in shapes.items()}] * (edges - len(bases))
    return fedavg([(f, 1) for f in full]) if shapes else {}


def naive_relay(
    fm: MaskedAutoencoder,
    uploads: Mapping[str, TunableModules],
    peft: PeftParams,
    seed: int,
    bases: Mapping[str, BaseCorrection] | None = None,
) -> ViT:
    """FM + the average of the edges' modules (and of their changes to frozen LoRA weights),
    folded into one plain ViT with a shared head."""
    base = average_bases(bases or {}, len(uploads))
    return merge_into_backbone(edge_model(fm, peft, average_uploads(uploads), seed, base))
