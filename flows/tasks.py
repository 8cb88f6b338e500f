"""Thin Prefect tasks: each is one call into ``ecogen.pipeline``.

``cache_policy=NONE``: stage inputs are files on disk that change between runs, so Prefect's
input-hash caching would be wrong here (DVC is what decides what is up to date).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from ecogen import pipeline
from ecogen.config.pipelines import StageName
from ecogen.pipeline import RunContext
from ecogen.stages.result import StageResult


@task(name="prepare-and-version", cache_policy=NONE)
def prepare_task(ctx: RunContext) -> RunContext:
    return pipeline.prepare_and_version(ctx)


@task(name="cloud-stage", task_run_name="{stage}", cache_policy=NONE)
def cloud_task(ctx: RunContext, stage: StageName) -> dict[str, float]:
    return pipeline.cloud_stage(ctx, stage)


@task(name="edge", task_run_name="{stage}-{domain}", cache_policy=NONE)
def edge_task(ctx: RunContext, stage: StageName, stage_run_id: str, domain: str) -> StageResult:
    return pipeline.edge_task(ctx, stage, stage_run_id, domain)
