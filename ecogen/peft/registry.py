"""PEFT methods by name. Adding one touches this file and its own module only."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ecogen.config.params import PeftParams
from ecogen.models.vit import ViT
from ecogen.peft.lora import apply_lora
from ecogen.peft.prompt import apply_head_only, apply_prompt

PeftFn = Callable[[ViT, PeftParams], nn.Module]

PEFT_METHODS: dict[str, PeftFn] = {"lora": apply_lora, "prompt": apply_prompt, "head": apply_head_only}


def apply_peft(model: ViT, cfg: PeftParams) -> nn.Module:
    """Freeze the FM and attach the configured tunable modules.

    Returns the module to train (a ``peft.PeftModel`` for LoRA, ``model`` itself otherwise).
    Either way ``model`` is modified in place, so ``split_segments(model, ...)`` afterwards
    yields segments that carry the adapters.
    """
    try:
        fn = PEFT_METHODS[cfg.method]
    except KeyError:
        raise ValueError(f"unknown PEFT method {cfg.method!r}; known: {sorted(PEFT_METHODS)}") from None
    return fn(model, cfg)
