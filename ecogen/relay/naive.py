"""The naive relay, for comparison: plain parameter averaging of the edges' modules into the FM."""

from __future__ import annotations

from collections.abc import Mapping

from peft import PeftModel
from torch import Tensor, nn

from ecogen.config.params import PeftParams
from ecogen.federated.aggregate import fedavg
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import load_tunable_state
from ecogen.split.channel import TunableModules


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


def edge_model(fm: MaskedAutoencoder, peft: PeftParams, state: Mapping[str, Tensor], seed: int) -> nn.Module:
    """An edge's domain model rebuilt in the cloud from the FM and the modules it uploaded."""
    model = build_edge_model(fm, peft, seed)
    load_tunable_state(model, dict(state))  # refuses anything that is not exactly these modules
    return model.eval()


def naive_relay(
    fm: MaskedAutoencoder, uploads: Mapping[str, TunableModules], peft: PeftParams, seed: int
) -> ViT:
    """FM + the average of the edges' modules, folded into one plain ViT with a shared head."""
    return merge_into_backbone(edge_model(fm, peft, average_uploads(uploads), seed))
