"""EcoGen's client training and the baselines it is compared with, as four switches.

Every method starts from the same edge model (FM + the edge's fine-tuned modules), trains on the
same clusters for the same rounds and local epochs with the same semi-supervised client loss,
and differs only in:

* ``split``: clients train through the cluster's device chain (activations and gradients on
  d2d links) rather than holding the whole model;
* ``full_model``: every weight trains (LoRA merged into the backbone first) rather than only the
  tunable PEFT modules;
* ``federated``: the edge averages the clusters' updates each round; without it every cluster
  keeps its own model (accuracy is then the mean over the clusters' models);
* ``pooled``: one learner gets every cluster's images in one place: *with all their labels*
  (the oracle, ``oracle``), or with only the labels the system holds (``pooled_labels``: what
  central training on the same labels reaches at the same client compute).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from peft import PeftModel
from torch import nn

from ecogen.config.params import HfslMethod


@dataclass(frozen=True)
class MethodSpec:
    split: bool
    full_model: bool
    federated: bool
    pooled: bool = False
    oracle: bool = False  # pooled with every true label (else only the labels the clients hold)
    title: str = ""


METHODS: dict[str, MethodSpec] = {
    "ecogen": MethodSpec(split=True, full_model=False, federated=True, title="EcoGen (HFSL, PEFT)"),
    "centralized": MethodSpec(
        split=False,
        full_model=True,
        federated=False,
        pooled=True,
        oracle=True,
        title="Centralized oracle (all labels)",
    ),
    "pooled_labels": MethodSpec(
        split=False, full_model=False, federated=False, pooled=True, title="Central, the same labels (PEFT)"
    ),
    "local": MethodSpec(split=True, full_model=False, federated=False, title="Local only (no federation)"),
    "fedavg_full": MethodSpec(split=False, full_model=True, federated=True, title="FedAvg, full model"),
    "fedavg_peft": MethodSpec(split=False, full_model=False, federated=True, title="FedAvg of PEFT modules"),
    "splitfed": MethodSpec(split=True, full_model=True, federated=True, title="SplitFed (full model)"),
}


def method_spec(method: HfslMethod | str) -> MethodSpec:
    try:
        return METHODS[method]
    except KeyError:
        raise ValueError(f"unknown HFSL method {method!r}; known: {sorted(METHODS)}") from None


def trainable_model(edge_model: nn.Module, spec: MethodSpec) -> nn.Module:
    """The model a method trains: the edge model itself, or a fully trainable copy.

    Full-model methods merge LoRA adapters into the backbone (so the model that crosses links
    is the plain ViT, with no adapter overhead) and unfreeze every weight.
    """
    if not spec.full_model:
        return edge_model
    model = copy.deepcopy(edge_model)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    return model
