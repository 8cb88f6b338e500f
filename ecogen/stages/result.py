"""What every stage returns: plain, typed results that the tracking layer logs.

Algorithm code never talks to MLflow; it fills one of these and the caller decides where it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn


@dataclass
class ModelArtifact:
    """A model to log: the module itself, an input example for its signature, and side files
    (e.g. the tunable-module state that is all an edge ever ships)."""

    module: nn.Module
    input_example: np.ndarray  # float32 batch, e.g. (2, C, H, W)
    extra_files: list[Path] = field(default_factory=list)


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
