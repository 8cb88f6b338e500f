"""Saving and loading the foundation model (encoder + MAE decoder) with its config."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig


def save_fm(mae: MaskedAutoencoder, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "config": asdict(mae.encoder.cfg),
        "encoder": mae.encoder.state_dict(),
        "decoder": mae.decoder.state_dict(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_fm(path: Path) -> MaskedAutoencoder:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the pretrain stage first")
    blob = torch.load(path, weights_only=True)
    mae = MaskedAutoencoder(ViT(ViTConfig(**blob["config"])))
    mae.encoder.load_state_dict(blob["encoder"])
    mae.decoder.load_state_dict(blob["decoder"])
    return mae
