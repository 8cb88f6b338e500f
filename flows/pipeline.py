"""The parent flow of a pipeline: prepare (DVC-versioned) → pretrain → finetune → hfsl → infer.

An experiment pipeline (``trials`` in pipelines.yaml) runs its shared stages once, then one
``trial`` subflow per (row, replicate) for its trailing stages.  A knowledge-flow pipeline
(``cycle``) runs its shared stages once, then one ``cycle`` subflow per cycle k = 0…N-1
(N = ``relay.cycles``), each starting from the FM the previous cycle's relay produced.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow

from ecogen import pipeline as glue
from ecogen.config.params import Params
from ecogen.config.pipelines import StageName, Trial
from ecogen.interrupts import is_stop
from ecogen.parallel import at_once
from ecogen.pipeline import RunContext
from ecogen.stages.registry import is_edge_stage
from flows.stages import cloud_flow, edge_flow, prepare_flow


def _run_stages(ctx: RunContext, stages: list[StageName]) -> tuple[RunContext, dict[str, float]]:
    metrics: dict[str, float] = {}
    for stage in stages:
        if (done := glue.completed_stage(ctx, stage)) is not None:  # only in a resumed run
            metrics |= {f"{stage}.{k}": v for k, v in done.items()}
            continue
        if (reused := glue.reused_stage(ctx, stage)) is not None:  # made by another pipeline
            ctx, done = reused
            metrics |= {f"{stage}.{k}": v for k, v in done.items()}
            continue
        if stage == "prepare":
            ctx = prepare_flow(ctx)
            continue
        run = edge_flow if is_edge_stage(stage) else cloud_flow
        metrics |= {f"{stage}.{k}": v for k, v in run(ctx, stage).items()}
    return ctx, metrics


@flow(name="trial", flow_run_name="{trial.name}")
def trial_flow(ctx: RunContext, trial: Trial, stages: list[StageName]) -> dict[str, float]:
    return _run_stages(ctx.for_trial(trial), stages)[1]


@flow(name="cycle", flow_run_name="cycle-{k}")
def cycle_flow(ctx: RunContext, k: int, stages: list[StageName]) -> dict[str, float]:
    return _run_stages(ctx.for_cycle(k), stages)[1]


@flow(name="ecogen-pipeline", flow_run_name="{pipeline}", log_prints=True)
def pipeline_flow(
    pipeline: str,
    stages: list[StageName],
    params: Params,
    project_root: str,
    trials: list[Trial] | None = None,
    trial_stages: list[StageName] | None = None,
    cycle_stages: list[StageName] | None = None,
    profile: str | None = None,
    resume_run_id: str | None = None,
    reuse: bool = True,
    trials_at_once: int = 1,
) -> dict[str, Any]:
    with glue.project_lock(Path(project_root), pipeline):  # one run per project at a time
        cycles = params.relay.cycles if cycle_stages else 0
        plan = glue.stage_plan(stages, trials or [], trial_stages or [], cycle_stages or [], cycles)
        ctx = glue.start_pipeline(pipeline, params, Path(project_root), profile, resume_run_id, reuse, plan)
        try:
            repeated = list(trial_stages or []) + list(cycle_stages or [])
            ctx, metrics = _run_stages(ctx, [s for s in stages if s not in repeated])
            calls = [partial(trial_flow, ctx, trial, list(trial_stages or [])) for trial in trials or []]
            for trial, result in zip(trials or [], at_once(calls, trials_at_once), strict=True):
                metrics |= {f"{trial.name}.{k}": v for k, v in result.items()}
            for k in range(cycles):
                result = cycle_flow(ctx, k, list(cycle_stages or []))
                metrics |= {f"cycle{k}.{key}": v for key, v in result.items()}
        except BaseException as exc:
            glue.finish_pipeline(ctx, failed=True, stopped=is_stop(exc))
            raise
        glue.finish_pipeline(ctx, metrics=metrics)
    return {"run_id": ctx.run_id, "metrics": metrics}
