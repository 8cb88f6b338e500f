"""An edge's domain model: a fresh copy of the frozen FM encoder with PEFT modules attached."""

from __future__ import annotations

import copy
import math
import threading
from pathlib import Path
from typing import cast

import torch
from peft import PeftModel
from torch import nn

from ecogen.config.params import PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.registry import apply_peft
from ecogen.peft.tunable import load_tunable_state, tunable_state

# Adapter initialisation inside peft draws from torch's global RNG, which every thread of the
# process shares: edges are built from parallel threads while other threads may draw from it (a
# DataLoader without a generator does).  So the random tensors are drawn again from a private
# generator (:func:`seeded_init`): the same seed gives the same modules, whatever runs beside.
_INIT_LOCK = threading.Lock()


def build_edge_model(fm: MaskedAutoencoder, cfg: PeftParams, seed: int) -> nn.Module:
    with _INIT_LOCK:
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        model = apply_peft(copy.deepcopy(fm.encoder), cfg)
        torch.random.set_rng_state(state)
    seeded_init(model, seed)
    return model


def seeded_init(model: nn.Module, seed: int) -> None:
    """Re-draw the randomly initialised tunable tensors from ``torch.Generator(seed)``, in name
    order, with the distributions their libraries use: LoRA's A as peft does (Kaiming uniform,
    a = √5; B stays zero) and visual prompts as ``ecogen.peft.prompt`` does (truncated normal)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if not p.requires_grad:
                continue
            if "lora_A" in name:
                nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=g)
            elif name.endswith("prompts"):
                nn.init.trunc_normal_(p, std=0.02, generator=g)


def base_vit(model: nn.Module) -> ViT:
    """The ViT inside a (possibly peft-wrapped) edge model; adapters are injected into it."""
    if isinstance(model, PeftModel):
        model = cast(nn.Module, model.base_model.model)
    if not isinstance(model, ViT):
        raise TypeError(f"expected a ViT edge model, got {type(model).__name__}")
    return model


def save_tunable(model: nn.Module, path: Path, method: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"method": method, "state": tunable_state(model)}, path)


def load_edge_model(fm: MaskedAutoencoder, cfg: PeftParams, path: Path, seed: int) -> nn.Module:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the stage that writes it first")
    blob = torch.load(path, weights_only=True)
    if blob["method"] != cfg.method:
        raise ValueError(f"{path} holds {blob['method']!r} modules but peft.method is {cfg.method!r}")
    model = build_edge_model(fm, cfg, seed)
    load_tunable_state(model, blob["state"])
    return model
