"""LoRA (Hu et al., 2021, arXiv 2106.09685) through the ``peft`` library, head trainable."""

from __future__ import annotations

from peft import LoraConfig, get_peft_model
from torch import nn

from ecogen.config.params import PeftParams
from ecogen.models.vit import ViT


def apply_lora(model: ViT, cfg: PeftParams) -> nn.Module:
    config = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        modules_to_save=["head"],  # the classifier head is trained in full
    )
    return get_peft_model(model, config)
