"""An edge's domain model: a fresh copy of the frozen FM encoder with PEFT modules attached."""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import torch
from peft import PeftModel
from torch import Tensor, nn

from ecogen.config.params import PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.registry import apply_peft
from ecogen.peft.tunable import load_tunable_state, tunable_state

# Adapter initialisation inside peft draws from torch's global RNG, which every thread of the
# process shares: edges are built from parallel threads while other threads may draw from it (a
# DataLoader without a generator does).  So the random tensors are drawn again from a private
# generator (:func:`seeded_init`): the same seed gives the same modules, whatever runs beside.
_INIT_LOCK = threading.Lock()
LORA_BASE = ".base_layer.weight"  # peft's name of a LoRA layer's frozen weight, after the layer's
BASE_DELTA = "base_delta"  # in a tunable.pt: the changes of frozen LoRA weights (base_delta)


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


def base_delta(model: nn.Module, fm: MaskedAutoencoder) -> dict[str, Tensor]:
    """What the frozen weights of ``model``'s LoRA layers hold beyond the FM's (FedEx-LoRA's
    corrections, ``ecogen.federated.fedex``), by parameter name, in float64 so that the FM's weight
    plus it gives the weight back bit for bit; empty where they are the FM's."""
    origin = dict(fm.encoder.named_parameters())
    out = {}
    for name, p in model.named_parameters():
        if name.endswith(LORA_BASE):
            # peft's base_model.model.<layer>.base_layer.weight is the FM encoder's <layer>.weight
            w0 = origin[name.removeprefix("base_model.model.").replace(LORA_BASE, ".weight")]
            if not torch.equal(p, w0):
                out[name] = p.detach().double() - w0.detach().double()
    return out


def add_base_delta(model: nn.Module, delta: Mapping[str, Tensor]) -> None:
    """``model``'s LoRA layers (built on the FM) take on a :func:`base_delta`."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, d in delta.items():
            if not name.endswith(LORA_BASE) or name not in params:
                raise KeyError(f"{name} is not the frozen weight of one of the model's LoRA layers")
            p = params[name]
            p.copy_((p.double() + d.double()).to(p.dtype))


def save_tunable(model: nn.Module, path: Path, method: str, fm: MaskedAutoencoder | None = None) -> None:
    """The tunable modules, and with ``fm`` any :func:`base_delta` of the model against it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob: dict[str, object] = {"method": method, "state": tunable_state(model)}
    if fm is not None and (delta := base_delta(model, fm)):
        blob[BASE_DELTA] = delta
    torch.save(blob, path)


def load_edge_model(fm: MaskedAutoencoder, cfg: PeftParams, path: Path, seed: int) -> nn.Module:
    """An edge's model from the FM and what :func:`save_tunable` wrote."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the stage that writes it first")
    blob = torch.load(path, weights_only=True)
    if blob["method"] != cfg.method:
        raise ValueError(f"{path} holds {blob['method']!r} modules but peft.method is {cfg.method!r}")
    model = build_edge_model(fm, cfg, seed)
    load_tunable_state(model, blob["state"])
    add_base_delta(model, blob.get(BASE_DELTA, {}))
    return model
