"""The stages by name, and the one runner that both `dvc repro` and the Prefect flows use.

Cloud stages run once; edge stages run once per domain (the flows fan those out as parallel
tasks) and are combined into one stage result whose children are the edges.  HFSL runs once
for all edges and returns the same shape of result.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from typing import cast

from ecogen.config.params import Params
from ecogen.config.pipelines import StageName
from ecogen.plots import series_csv, series_plot
from ecogen.stages.result import StageResult, combine
from ecogen.workspace import Workspace

CloudStage = Callable[[Params, Workspace], StageResult]
EdgeStage = Callable[[Params, Workspace, str], StageResult]

# Stages that run as one call: the cloud's, and HFSL (its edges meet at the cloud every
# `hfsl.cloud_every` rounds, so they run together; their clusters train in parallel inside).
# "module:function", imported on first use: `ecogen stage prepare` (what `dvc repro` runs per
# stage) then does not pay for importing peft and transformers.
CLOUD_STAGES: dict[str, str] = {
    "prepare": "ecogen.stages.prepare:prepare",
    "pretrain": "ecogen.stages.pretrain:pretrain",
    "hfsl": "ecogen.stages.hfsl:hfsl",
    "relay": "ecogen.stages.relay:relay",
    "gate": "ecogen.stages.gate:gate",
}
EDGE_STAGES: dict[str, str] = {
    "finetune": "ecogen.stages.finetune:finetune_edge",
    "infer": "ecogen.stages.infer:infer_edge",
}


def _load(ref: str) -> Callable[..., StageResult]:
    module, name = ref.split(":")
    return cast(Callable[..., StageResult], getattr(importlib.import_module(module), name))


def cloud_stage(stage: StageName) -> CloudStage:
    return _load(CLOUD_STAGES[stage])


def edge_stage(stage: StageName) -> EdgeStage:
    return _load(EDGE_STAGES[stage])


def is_edge_stage(stage: StageName) -> bool:
    return stage in EDGE_STAGES


def run_edge(stage: StageName, params: Params, ws: Workspace, domain: str) -> StageResult:
    return edge_stage(stage)(params, ws, domain)


def write_outputs(result: StageResult, ws: Workspace) -> StageResult:
    """metrics/<stage>.json for `dvc metrics`, per-round CSV + PNG for `dvc plots` and MLflow."""
    ws.metrics.mkdir(parents=True, exist_ok=True)
    flat = {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.flat_metrics().items()
    }
    (ws.metrics / f"{result.name}.json").write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    if result.name == "hfsl":
        for key, label in (("accuracy", "test accuracy"), ("bytes_edge_client", "edge↔client bytes")):
            series = {c.name: c.history[key] for c in result.children}
            series_csv(series, ws.plots / f"hfsl_{key}.csv")
            result.artifacts.append(series_plot(series, label, ws.plots / f"hfsl_{key}.png"))
    return result


def run_stage(stage: StageName, params: Params, ws: Workspace) -> StageResult:
    """Runs one whole stage in this process (what `ecogen stage NAME` and `dvc repro` do)."""
    if stage in CLOUD_STAGES:
        result = cloud_stage(stage)(params, ws)
    else:
        result = combine(stage, [run_edge(stage, params, ws, d) for d in params.data.domains])
    return write_outputs(result, ws)
