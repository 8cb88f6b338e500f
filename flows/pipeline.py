"""The parent flow of a pipeline: prepare (DVC-versioned) → pretrain → finetune → hfsl → infer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from ecogen import pipeline as glue
from ecogen.config.params import Params
from ecogen.config.pipelines import StageName
from ecogen.stages.registry import is_edge_stage
from flows.stages import cloud_flow, edge_flow, prepare_flow


@flow(name="ecogen-pipeline", flow_run_name="{pipeline}", log_prints=True)
def pipeline_flow(
    pipeline: str, stages: list[StageName], params: Params, project_root: str
) -> dict[str, Any]:
    ctx = glue.start_pipeline(pipeline, params, Path(project_root))
    metrics: dict[str, float] = {}
    try:
        for stage in stages:
            if stage == "prepare":
                ctx = prepare_flow(ctx)
                continue
            run = edge_flow if is_edge_stage(stage) else cloud_flow
            metrics |= {f"{stage}.{k}": v for k, v in run(ctx, stage).items()}
    except BaseException:
        glue.finish_pipeline(ctx, failed=True)
        raise
    glue.finish_pipeline(ctx)
    return {"run_id": ctx.run_id, "metrics": metrics}
