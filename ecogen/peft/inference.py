"""The fastest model that computes what a tuned model computes, for evaluation.

LoRA adds a second path to every adapted layer, ``W·x + s·B·(A·x)``: two small matmuls and two
passes over the layer's output, which on a CPU cost more than the arithmetic suggests (at the
CPU profile's sizes a forward pass takes ~1.6× as long as with the adapters merged).  Merging a
copy (``W + s·B·A``, ~20 ms at those sizes) gives the same outputs to float rounding; the model
being trained is left as it is.
"""

from __future__ import annotations

import copy

from peft import LoraConfig, PeftModel
from torch import nn


def for_inference(model: nn.Module) -> nn.Module:
    """A LoRA model: a copy with its adapters merged into the weights; any other model: itself."""
    if isinstance(model, PeftModel) and all(isinstance(c, LoraConfig) for c in model.peft_config.values()):
        return copy.deepcopy(model).merge_and_unload()
    return model
