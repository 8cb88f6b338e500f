"""What every stage returns: plain, typed results that the tracking layer logs.

Algorithm code never talks to MLflow; it fills one of these and the caller decides where it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ecogen.models.export import ModelOutput
from ecogen.stages.metric import over_edges


@dataclass
class ModelArtifact:
    """A model to log: the module (it takes (B, C, H, W) floats in [-1, 1]), raw images for its
    input example, side files (e.g. the tunable-module state that is all an edge ever ships), and
    what the logged model returns: softmax over the module's logits, or its output as is."""

    module: nn.Module
    input_example: np.ndarray  # uint8 images as prepared, e.g. (2, C, H, W)
    extra_files: list[Path] = field(default_factory=list)
    output: ModelOutput = "probabilities"


@dataclass
class StageResult:
    name: str  # "pretrain", or "edge-<domain>" for a per-edge child
    metrics: dict[str, float] = field(default_factory=dict)  # final scalars
    # per-step series: metric name → values; step i is epoch/round i + 1
    history: dict[str, list[float]] = field(default_factory=dict)
    params: dict[str, str | int | float] = field(default_factory=dict)  # run-specific facts
    models: dict[str, ModelArtifact] = field(default_factory=dict)  # logged-model name → model
    artifacts: list[Path] = field(default_factory=list)  # plots and reports
    children: list[StageResult] = field(default_factory=list)  # e.g. one per edge

    def flat_metrics(self) -> dict[str, float]:
        """Own metrics plus children's, prefixed ``<child>/<metric>`` (for metrics/*.json)."""
        out = dict(self.metrics)
        for child in self.children:
            out.update({f"{child.name}/{k}": v for k, v in child.flat_metrics().items()})
        return out


def combine(stage: str, children: list[StageResult]) -> StageResult:
    """Stage-level result over its edges: the mean of every metric, and of every per-step series,
    that all edges share."""
    if not children:
        return StageResult(name=stage)
    shared = set.intersection(*(set(c.metrics) for c in children))
    metrics = {over_edges(k): sum(c.metrics[k] for c in children) / len(children) for k in sorted(shared)}
    series = set.intersection(*(set(c.history) for c in children))
    history = {
        over_edges(k): [sum(v) / len(v) for v in zip(*(c.history[k] for c in children), strict=True)]
        for k in sorted(series)
        if len({len(c.history[k]) for c in children}) == 1
    }
    return StageResult(name=stage, metrics=metrics, history=history, children=children)
