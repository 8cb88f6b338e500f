"""One small flow per stage. Edges of an edge stage run as parallel tasks."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from ecogen import pipeline
from ecogen.config.pipelines import StageName
from ecogen.pipeline import RunContext
from flows.tasks import cloud_task, edge_task, prepare_task


@flow(name="prepare", flow_run_name="prepare")
def prepare_flow(ctx: RunContext) -> RunContext:
    return prepare_task(ctx)


@flow(name="cloud-stage", flow_run_name="{stage}")
def cloud_flow(ctx: RunContext, stage: StageName) -> dict[str, float]:
    return cloud_task(ctx, stage)


@flow(name="edge-stage", flow_run_name="{stage}", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]
def edge_flow(ctx: RunContext, stage: StageName) -> dict[str, float]:
    with pipeline.edge_stage(ctx, stage) as run:
        futures = [edge_task.submit(ctx, stage, run.run_id, d) for d in ctx.params.data.domains]
        return pipeline.close_edge_stage(ctx, stage, run, [f.result() for f in futures])
