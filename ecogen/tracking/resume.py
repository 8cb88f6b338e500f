"""Resuming a pipeline run that did not finish (`ecogen run P --resume`), from MLflow's record.

The newest unfinished run of the pipeline (FAILED, KILLED, or RUNNING left behind by a killed
process) with the same profile is reopened, provided it was made with exactly the params of this
invocation.  Its stages that FINISHED — with the same params, for the same trial or cycle — are
not run again; everything else is.  The run's stale RUNNING children are marked KILLED first, so
the MLflow UI shows what was interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run

from ecogen.config.params import Params
from ecogen.config.pipelines import NO_PROFILE, STAGE_ORDER
from ecogen.tracking.runs import (
    CYCLE,
    DATA_VERSION,
    DATA_VERSION_PARAM,
    KIND,
    REPLICATE,
    ROW,
    STAGE,
    UNKNOWN_VERSION,
    flatten_params,
    pipeline_runs,
    quote,
    run_profile,
    search_all,
    tracking_client,
)

UNFINISHED = ("FAILED", "KILLED", "RUNNING")


class ResumeError(RuntimeError):
    """Nothing to resume, or the run to resume was made with other params; the message says which."""


def params_diff(
    logged: Mapping[str, str], current: Mapping[str, str], defaults: Mapping[str, str] | None = None
) -> list[str]:
    """``"key: old → new"`` for every configuration param whose logged value differs.  Params a
    run logged beyond the configuration (facts a stage measured, the data version) are ignored,
    and so is a param the run predates (absent there) whose value now is its default."""
    defaults = defaults or {}
    return [
        f"{k}: {logged.get(k, '(absent)')} → {v}"
        for k, v in sorted(current.items())
        if k != DATA_VERSION_PARAM and logged.get(k) != v and not (k not in logged and defaults.get(k) == v)
    ]


@cache
def _defaults() -> dict[str, str]:
    return flatten_params(Params())


def _diff(logged: Mapping[str, str], params: Params) -> list[str]:
    return params_diff(logged, flatten_params(params), _defaults())


def resumable_run(params: Params, pipeline: str, project_root: Path, profile: str | None) -> Run:
    """The newest run of ``pipeline`` made with ``profile``, if it did not finish; ResumeError when
    there is none, it finished, or it was made with other params.  Runs logged before profiles
    were recorded (no ``ecogen.profile`` tag) are never resumed."""
    client, exp_id = tracking_client(params, project_root)
    wanted = profile or NO_PROFILE
    runs = [r for r in pipeline_runs(client, exp_id, pipeline) if run_profile(r) == wanted]
    if not runs or runs[0].info.status not in UNFINISHED:
        state = f"its newest run {runs[0].info.run_id} is {runs[0].info.status}" if runs else "it never ran"
        raise ResumeError(
            f"nothing to resume for pipeline {pipeline!r} (profile {wanted}): {state}; "
            "run it without --resume"
        )
    run = runs[0]
    if diff := _diff(run.data.params, params):
        shown = "; ".join(diff[:5]) + (f"; and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise ResumeError(
            f"run {run.info.run_id} of {pipeline!r} was made with other params ({shown}): "
            "run without --resume, or with the params it was made with"
        )
    return run


def _kill_stale(client: MlflowClient, exp_id: str, parent_id: str) -> None:
    """Every RUNNING run below ``parent_id``, at any depth, → KILLED (what the dead process left)."""
    for child in search_all(client, exp_id, f"tags.mlflow.parentRunId = {quote(parent_id)}"):
        _kill_stale(client, exp_id, child.info.run_id)
        if child.info.status == "RUNNING":
            client.set_terminated(child.info.run_id, "KILLED")


def reopen(params: Params, project_root: Path, run_id: str) -> str | None:
    """Mark the run RUNNING again and its stale RUNNING descendants KILLED; returns its data
    version (the finished prepare stage's, if the run died before recording it)."""
    client, exp_id = tracking_client(params, project_root)
    run = client.get_run(run_id)
    _kill_stale(client, exp_id, run_id)
    client.update_run(run_id, status="RUNNING")
    version = run.data.tags.get(DATA_VERSION)
    if version in (None, UNKNOWN_VERSION):
        prepared = finished_stage_run(run_id, "prepare", params, None, None)
        version = prepared.data.tags.get(DATA_VERSION) if prepared else None
    return None if version in (None, UNKNOWN_VERSION) else version


def upstream(tags: Mapping[str, str], stage: str, trial: tuple[str, int] | None, cycle: int | None) -> bool:
    """Whether the stage run tagged ``tags`` (same pipeline run) produced something ``stage`` of
    this trial or cycle reads: shared stages feed every later stage, trials feed nothing, cycle k
    feeds its later stages and every later cycle."""
    other = tags.get(STAGE, "")
    if ROW in tags or other not in STAGE_ORDER or stage not in STAGE_ORDER:
        return False
    earlier = STAGE_ORDER.index(other) < STAGE_ORDER.index(stage)
    if CYCLE not in tags:  # a shared stage
        return trial is not None or cycle is not None or earlier
    if cycle is None:
        return False
    k = int(tags[CYCLE])
    return k < cycle or (k == cycle and earlier)


def finished_stage_run(
    pipeline_run_id: str, stage: str, params: Params, trial: tuple[str, int] | None, cycle: int | None
) -> Run | None:
    """The FINISHED run of ``stage`` under the pipeline run for this (row, replicate) or cycle,
    made with ``params`` and newer than every finished run of a stage it reads from (a stage that
    reran makes everything downstream run again, as DVC would); None when ``stage`` has to run."""
    client = MlflowClient()
    parent = client.get_run(pipeline_run_id)
    query = (
        f"tags.mlflow.parentRunId = {quote(pipeline_run_id)} AND tags.`{KIND}` = 'stage' "
        "AND attributes.status = 'FINISHED'"
    )
    finished = search_all(client, parent.info.experiment_id, query)
    inputs = [r.info.start_time for r in finished if upstream(r.data.tags, stage, trial, cycle)]
    newest_input = max(inputs, default=0)
    for run in finished:
        tags = run.data.tags
        same_trial = (tags.get(ROW), tags.get(REPLICATE)) == (
            (trial[0], str(trial[1])) if trial else (None, None)
        )
        same_cycle = tags.get(CYCLE) == (None if cycle is None else str(cycle))
        if (
            tags.get(STAGE) == stage
            and same_trial
            and same_cycle
            and run.info.start_time >= newest_input
            and not _diff(run.data.params, params)
        ):
            return run
    return None
