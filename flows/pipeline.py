"""The parent flow of a pipeline: prepare (DVC-versioned) → pretrain → finetune → hfsl → infer.

An experiment pipeline (``trials`` in pipelines.yaml) runs its shared stages once, then one
``trial`` subflow per (row, replicate) for its trailing stages.  A knowledge-flow pipeline
(``cycle``) runs its shared stages once, then one ``cycle`` subflow per cycle k = 0…N-1
(N = ``relay.cycles``), each starting from the FM the previous cycle's relay produced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, State

from ecogen import pipeline as glue
from ecogen import served
from ecogen.config import ConfigError
from ecogen.config.load import resolve_run
from ecogen.config.pipelines import StageName, Trial
from ecogen.pipeline import RunContext
from ecogen.runtime import placement
from ecogen.runtime.interrupts import is_stop
from ecogen.runtime.parallel import at_once
from ecogen.stages.registry import is_edge_stage
from ecogen.tracking.resume import ResumeError
from flows.logs import log_to_prefect, publish_summary, refused, wait_for
from flows.stages import cloud_flow, edge_flow, prepare_flow


def _run_stages(
    ctx: RunContext, stages: list[StageName], pools: Mapping[str, str] | None = None
) -> tuple[RunContext, dict[str, float]]:
    """The stages in order; consecutive stages placed on one work pool run as one placed flow run."""
    metrics: dict[str, float] = {}
    pools = pools or {}
    i = 0
    while i < len(stages):
        stage = stages[i]
        i += 1
        if (done := glue.completed_stage(ctx, stage)) is not None:  # only in a resumed run
            metrics |= {f"{stage}.{k}": v for k, v in done.items()}
            continue
        if served.served_stage(ctx, stage) is not None:  # a stream's champion FM, delivered
            continue
        if (reused := glue.reused_stage(ctx, stage)) is not None:  # made by another pipeline
            ctx, done = reused
            metrics |= {f"{stage}.{k}": v for k, v in done.items()}
            continue
        if (pool := pools.get(stage)) is not None:
            group = [stage]
            while i < len(stages) and pools.get(stages[i]) == pool:
                group.append(stages[i])
                i += 1
            metrics |= place(ctx, group, pool)
            continue
        if stage == "prepare":
            ctx = prepare_flow(ctx)
            continue
        run = edge_flow if is_edge_stage(stage) else cloud_flow
        metrics |= {f"{stage}.{k}": v for k, v in run(ctx, stage).items()}
    return ctx, metrics


@flow(name=placement.DEPLOYMENT_FLOW, flow_run_name="{label}")
def placed_flow(
    ctx: RunContext, stages: list[StageName], label: str, tracking_uri: str | None = None
) -> dict[str, float]:
    """On a worker: the stages in a folder of this flow run's own, inputs and outputs through the
    MLflow artifact store."""
    log_to_prefect()
    worker = os.environ.get("PREFECT__WORKER_NAME")  # set by the worker for the runs it starts
    here = placement.on_worker(ctx, Path.cwd(), worker, tracking_uri, label)
    metrics = _run_stages(here, stages)[1]
    placement.send_outputs(here, label)
    return metrics


def place(ctx: RunContext, stages: list[StageName], pool: str) -> dict[str, float]:
    """Parent: the stages as a flow run of the pool's placed deployment; waits for it."""
    label = " + ".join(ctx.stage_label(s) for s in stages)
    placement.send_inputs(ctx, stages, label)
    uri = placement.shared_tracking_uri(ctx)
    parameters = {"ctx": ctx, "stages": stages, "label": label, "tracking_uri": uri}
    run = run_deployment(
        placement.deployment_name(pool), parameters=parameters, flow_run_name=label, timeout=0
    )
    final = wait_for(cast(FlowRun, run).id)  # timeout=0: created, not waited on
    if final.state is None or not final.state.is_completed():
        state = final.state.name if final.state else "unknown"
        why = f": {final.state.message}" if final.state and final.state.message else ""
        raise placement.PlacedRunFailed(
            f"{label} on work pool {pool}: flow run {final.name} ended {state}{why}"
        )
    return placement.receive_outputs(ctx, stages, label)


@flow(name="trial", flow_run_name="{trial.name}")
def trial_flow(
    ctx: RunContext, trial: Trial, stages: list[StageName], pool: str | None = None
) -> dict[str, float]:
    return _run_stages(ctx.for_trial(trial), stages, dict.fromkeys(stages, pool) if pool else None)[1]


@flow(name="cycle", flow_run_name="cycle-{k}")
def cycle_flow(
    ctx: RunContext, k: int, stages: list[StageName], pools: dict[str, str] | None = None
) -> dict[str, float]:
    return _run_stages(ctx.for_cycle(k), stages, pools)[1]


@flow(name="ecogen-pipeline", flow_run_name="{pipeline}", log_prints=True)
def pipeline_flow(
    pipeline: str,
    profile: str | None = None,
    overrides: list[str] | None = None,
    resume: bool = False,
    reuse: bool = True,
    trials_at_once: int | None = None,
    params_file: str = "params.yaml",
    pipelines_file: str = "pipelines.yaml",
    places: dict[str, str] | None = None,
) -> dict[str, Any] | State:
    """A pipeline of pipelines.yaml, configured as its files say *when it runs*: params.yaml, the
    pipeline's overrides, the ``profile``, then ``overrides`` (``--set``-style ``KEY=VALUE``).
    Files are read from the working directory (the project); a bad value fails the run at once
    with one line.  ``resume``: continue the newest unfinished run of it (``ecogen run --resume``);
    ``places``: stage (or ``trials``) → the work pool it runs on, over pipelines.yaml's ``pools``."""
    log_to_prefect()
    root = Path.cwd()
    try:
        cfg = resolve_run(root, pipeline, profile, overrides or [], params_file, pipelines_file, places)
        resume_run_id = glue.resumable(cfg.name, cfg.params, root, profile) if resume else None
        # a stream takes in its next increment, or has nothing to do
        params = served.resolve_increment(cfg.params, cfg.name, root, profile)
    except (ConfigError, ResumeError) as err:
        return refused(err)
    except served.NothingToDo as why:
        get_run_logger().info("%s: %s", cfg.name, why)
        return Completed(message=str(why))
    spec = cfg.spec
    trial_stages = spec.trials.stages if spec.trials else []
    cycle_stages = spec.cycle or []
    pools = {str(k): v for k, v in spec.pools.items()}
    with glue.project_lock(root, cfg.name):  # one run per project at a time
        cycles = params.relay.cycles if cycle_stages else 0
        plan = glue.stage_plan(spec.stages, cfg.trials, trial_stages, cycle_stages, cycles)
        source = f"prefect deployment {flow_run.flow_name}/{dep}" if (dep := deployment.name) else None
        ctx = glue.start_pipeline(cfg.name, params, root, profile, resume_run_id, reuse, plan, source)
        # on a work pool's worker: its stage runs are tagged with the worker, as placed ones are
        ctx = ctx.model_copy(update={"worker": os.environ.get("PREFECT__WORKER_NAME")})
        try:
            if params.stream.increments is not None:
                ctx = served.fetch_served(ctx)
            ctx, metrics = _run_stages(ctx, spec.shared_stages, pools)
            for draw in range(1, spec.trials.fm_draws if spec.trials else 1):  # the other FMs
                made = _run_stages(glue.start_draw(ctx, draw), glue.draw_stages(spec.shared_stages), pools)
                metrics |= {f"fm{draw}.{k}": v for k, v in made[1].items()}
            pool = spec.trials.pool if spec.trials else None
            calls = [partial(trial_flow, ctx, trial, trial_stages, pool) for trial in cfg.trials]
            at_a_time = trials_at_once or (spec.trials.parallel if spec.trials else 1)
            for trial, result in zip(cfg.trials, at_once(calls, at_a_time), strict=True):
                metrics |= {f"{trial.name}.{k}": v for k, v in result.items()}
            for k in range(cycles):
                result = cycle_flow(ctx, k, cycle_stages, pools)
                metrics |= {f"cycle{k}.{key}": v for key, v in result.items()}
            if params.stream.increments is not None:
                metrics |= served.settle(ctx)  # the gate's decisions into the registry
        except BaseException as exc:
            glue.finish_pipeline(ctx, failed=True, stopped=is_stop(exc))
            raise
        glue.finish_pipeline(ctx, metrics=metrics)
    publish_summary(ctx.run_id, cfg.name)
    return {"run_id": ctx.run_id, "metrics": metrics}
