"""Glue between stages, tracking and versioning — what the CLI and the Prefect tasks call.

A pipeline run (``ecogen run P``) works in ``runs/P/`` and nests every stage run, and every
edge run, under one MLflow parent run.  A standalone stage (``ecogen stage S``, what `dvc repro`
calls) works in the project root and nests its stage run under one parent run per `dvc repro`.
Both execute the same stage functions from :mod:`ecogen.stages.registry`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ecogen.config.params import Params
from ecogen.config.pipelines import NO_PROFILE, StageName, Trial
from ecogen.runtime import reuse
from ecogen.runtime.environment import cores, share_cores, use_cores
from ecogen.runtime.interrupts import is_stop
from ecogen.runtime.progress import Aggregate, listening
from ecogen.runtime.runlock import (
    ProjectBusy as ProjectBusy,  # re-exported: the CLI and the flow take the lock
)
from ecogen.runtime.runlock import project_lock as project_lock
from ecogen.runtime.terminal import ProgressLines, drop_bars
from ecogen.stages.registry import CLOUD_STAGES, combine, is_edge_stage, run_edge, run_stage, write_outputs
from ecogen.stages.result import StageResult
from ecogen.tracking import (
    finish_run,
    flatten_params,
    set_data_version,
    start_child_run,
    start_pipeline_run,
    track_stage,
)
from ecogen.tracking.headline import log_dataset, log_headline
from ecogen.tracking.live import LiveMetrics
from ecogen.tracking.repro import DVC_PIPELINE, repro_parent
from ecogen.tracking.resume import ResumeError, finished_stage_run, reopen, resumable_run
from ecogen.tracking.run_summary import log_summary
from ecogen.tracking.runs import (
    CYCLE,
    EDGE,
    FM_DRAW,
    HOST,
    LOCAL_WORKER,
    PROFILE,
    REPLICATE,
    ROW,
    TRIAL,
    WORKER,
    copy_results,
)
from ecogen.tracking.source import params_hash
from ecogen.tracking.stage import StageRun
from ecogen.tracking.uri import server_gone, tracking_lost
from ecogen.versioning import data_version_from_lock, ensure_dvc_repo, hash_data, show_last_run, version_data
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.pipeline")

# In runs/PIPELINE/: the MLflow run the files there belong to, and the process writing them.
RUN_MARKER = ".ecogen-run.json"


class RunContext(BaseModel):
    """Everything a task needs to do its part of one pipeline run (JSON-serialisable)."""

    model_config = ConfigDict(frozen=True)

    pipeline: str
    params: Params
    project_root: Path
    profile: str | None = None  # the pipelines.yaml profile applied (None: as written)
    workdir: Path
    run_id: str
    data_version: str | None = None
    trial: Trial | None = None  # set while the trial stages of an experiment run
    cycle: int | None = None  # set while cycle k of the knowledge-flow loop runs
    resumed: bool = False  # a reopened run (`--resume`): stages it already finished are skipped
    reuse: bool = True  # shared stages copy another pipeline's outputs made with the same params
    plan: tuple[str, ...] = ()  # every stage run of the pipeline in order, named as :func:`_stage` does
    worker: str | None = None  # the Prefect worker running this part (None: the parent's process)

    def stage_label(self, stage: StageName) -> str:
        """The stage as runs and progress lines name it: ``hfsl``, ``hfsl[row-r0]``, ``relay[cycle 1]``,
        ``pretrain[fm 1]``."""
        if self.trial is not None:
            return f"{stage}[{self.trial.name}]"
        if self.cycle is not None:
            return f"{stage}[cycle {self.cycle}]"
        return f"{stage}[fm {self.params.pretrain.draw}]" if self.params.pretrain.draw else stage

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.workdir, self.trial.name if self.trial else None, self.cycle)

    def for_cycle(self, k: int) -> RunContext:
        return self.model_copy(update={"cycle": k})

    def for_trial(self, trial: Trial) -> RunContext:
        """The context of one (row, replicate): its params, its own output folders and run tags,
        in the folder of its FM draw."""
        workdir = draw_folder(self.project_root, self.pipeline, trial.draw)
        return self.model_copy(update={"trial": trial, "params": trial.params, "workdir": workdir})

    def for_draw(self, draw: int) -> RunContext:
        """The shared stages of FM draw ``draw`` (:func:`start_draw` makes its folder)."""
        pretrain = self.params.pretrain.model_copy(update={"draw": draw})
        params = self.params.model_copy(update={"pretrain": pretrain})
        return self.model_copy(
            update={"params": params, "workdir": draw_folder(self.project_root, self.pipeline, draw)}
        )


def draw_folder(project_root: Path, pipeline: str, draw: int) -> Path:
    """Where FM draw ``draw`` of ``pipeline`` works: ``runs/<pipeline>/`` for draw 0, a sibling
    ``runs/<pipeline>@fm<draw>/`` for the others (a pipeline folder of its own to
    :mod:`ecogen.runtime.reuse`, so another pipeline's same draw is copied, not made again)."""
    return project_root / "runs" / (f"{pipeline}@fm{draw}" if draw else pipeline)


def draw_stages(stages: list[StageName]) -> list[StageName]:
    """The shared stages a further FM draw runs: all but prepare (its data are copied)."""
    return [s for s in stages if s != "prepare"]


def start_draw(ctx: RunContext, draw: int) -> RunContext:
    """FM draw ``draw``'s folder, marked as this run's, holding the pipeline's prepared data (the
    same images for every draw: only the FM differs)."""
    here = ctx.for_draw(draw)
    here.workdir.mkdir(parents=True, exist_ok=True)
    (here.workdir / RUN_MARKER).write_text((ctx.workdir / RUN_MARKER).read_text())
    reuse.copy_outputs(ctx.workdir, here.workdir, "prepare")
    return here


def stage_plan(
    stages: list[StageName],
    trials: list[Trial],
    trial_stages: list[StageName],
    cycle_stages: list[StageName],
    cycles: int,
) -> tuple[str, ...]:
    """Every stage run of a pipeline in the order the flow runs them (for "stage k/N")."""
    repeated = set(trial_stages) | set(cycle_stages)
    plan: list[str] = [s for s in stages if s not in repeated]
    draws = sorted({t.draw for t in trials} - {0})
    plan += [f"{s}[fm {d}]" for d in draws for s in draw_stages(stages) if s not in repeated]
    plan += [f"{s}[{t.name}]" for t in trials for s in trial_stages]
    plan += [f"{s}[cycle {k}]" for k in range(cycles if cycle_stages else 0) for s in cycle_stages]
    return tuple(plan)


def start_pipeline(
    pipeline: str,
    params: Params,
    project_root: Path,
    profile: str | None = None,
    resume_run_id: str | None = None,
    reuse: bool = True,
    plan: tuple[str, ...] = (),
    source: str | None = None,
) -> RunContext:
    """A new pipeline run, or — with ``resume_run_id`` (see :func:`resumable`) — that run reopened.
    ``reuse``: shared stages may copy outputs another pipeline made with the same params
    (:mod:`ecogen.runtime.reuse`); ``plan``: the stage runs to come (:func:`stage_plan`); ``source``:
    what started it (a Prefect deployment), as MLflow shows it."""
    root = project_root.resolve()
    workdir = (root / "runs" / pipeline).resolve()
    if workdir.parent != root / "runs":  # names are validated; this is the last line of defence
        raise ValueError(f"pipeline {pipeline!r} would write outside {root / 'runs'}")
    version, resumed = None, resume_run_id is not None
    if resume_run_id is not None:
        version = reopen(params, root, resume_run_id)
        log.info("resuming pipeline run %s of %s (data version %s)", resume_run_id, pipeline, version)
        run_id = resume_run_id
    else:
        run_id = start_pipeline_run(params, pipeline, root, {PROFILE: profile or NO_PROFILE}, source)
    log.info(
        "pipeline %s: MLflow run %s, params hash %s (profile %s)",
        pipeline,
        run_id,
        params_hash(flatten_params(params)),
        profile or NO_PROFILE,
    )
    workdir.mkdir(parents=True, exist_ok=True)  # marked as this run's, by this process
    marker = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname()}
    (workdir / RUN_MARKER).write_text(json.dumps(marker) + "\n")
    return RunContext(
        pipeline=pipeline,
        params=params,
        project_root=root,
        workdir=workdir,
        run_id=run_id,
        data_version=version,
        resumed=resumed,
        reuse=reuse,
        plan=plan,
        profile=profile,
    )


def _alive(pid: int) -> bool:
    """Whether an ecogen or Prefect process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True
    text = cmdline.read_bytes().decode(errors="replace")
    return "ecogen" in text or "prefect" in text


def resumable(pipeline: str, params: Params, project_root: Path, profile: str | None) -> str:
    """The id of the run ``ecogen run PIPELINE --resume`` continues: the newest run of this profile,
    unfinished, made with these params (:func:`~ecogen.tracking.resume.resumable_run`), whose files
    ``runs/PIPELINE/`` still holds and whose process is gone.  ResumeError otherwise."""
    root = project_root.resolve()
    run_id = resumable_run(params, pipeline, root, profile).info.run_id
    path = root / "runs" / pipeline / RUN_MARKER
    marker = json.loads(path.read_text()) if path.is_file() else {}
    if marker.get("run_id") != run_id:
        holder = f"run {marker['run_id']}" if marker.get("run_id") else "no run's"
        raise ResumeError(
            f"runs/{pipeline}/ holds the files of {holder}, not those of run {run_id}, which "
            "cannot be resumed from them: run without --resume"
        )
    pid = marker.get("pid")
    here = marker.get("host") == socket.gethostname()
    if here and isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        raise ResumeError(f"run {run_id} is still being run by process {pid}: stop it first")
    return run_id


def completed_stage(ctx: RunContext, stage: StageName) -> dict[str, float] | None:
    """In a resumed run: the metrics of ``stage`` if it already FINISHED there for this trial or
    cycle with these params and its outputs are still in the workspace; None: it has to run."""
    if not ctx.resumed or not (ctx.workspace.metrics / f"{stage}.json").is_file():
        return None
    trial = (ctx.trial.row, ctx.trial.replicate) if ctx.trial else None
    run = finished_stage_run(ctx.run_id, stage, ctx.params, trial, ctx.cycle)
    if run is None:
        return None
    where = f"[{ctx.trial.name}]" if ctx.trial else f"[cycle {ctx.cycle}]" if ctx.cycle is not None else ""
    log.info("resume: %s%s finished in run %s; not run again", stage, where, run.info.run_id)
    return {k: v for k, v in written_metrics(ctx, stage).items() if "/" not in k}


def written_metrics(ctx: RunContext, stage: StageName) -> dict[str, float]:
    """The metrics a stage wrote to its ``metrics/<stage>.json`` (those with a value)."""
    written = json.loads((ctx.workspace.metrics / f"{stage}.json").read_text())
    return {k: float(v) for k, v in written.items() if v is not None}


def finish_pipeline(
    ctx: RunContext, failed: bool = False, metrics: dict[str, float] | None = None, stopped: bool = False
) -> None:
    """Headline metrics on the parent run (what the MLflow runs table compares), then its status
    (KILLED when the run was ``stopped``: Ctrl-C, SIGTERM).  A run that finished becomes what
    `dvc metrics show` and `dvc plots show` list (:mod:`ecogen.versioning.shown`)."""
    finish_pipeline_run(ctx.run_id, metrics or {}, failed, stopped)
    if not failed and not stopped:
        show_last_run(ctx.workdir, ctx.project_root, ctx.plan or None)


def finish_pipeline_run(
    run_id: str, metrics: dict[str, float], failed: bool = False, stopped: bool = False
) -> None:
    if (failed or stopped) and server_gone():  # it stays RUNNING there: what --resume continues
        return
    try:
        log_headline(run_id, metrics)
        if not failed and not stopped:
            log_summary(run_id)
    except Exception:  # the run's status matters more than its summary
        if failed or stopped:  # e.g. the tracking server is what failed: said once, by the caller
            log.warning("could not log the headline metrics of run %s", run_id)
        else:
            log.exception("could not log the headline metrics of run %s", run_id)
    try:
        finish_run(run_id, "KILLED" if stopped else "FAILED" if failed else "FINISHED")
    except Exception:
        if not (failed or stopped):
            raise
        # a run whose tracking server is gone cannot be marked: it stays RUNNING, what --resume continues
        log.warning("could not mark run %s as ended in the tracking store", run_id)


def _shared(ctx: RunContext, stage: StageName) -> bool:
    """A stage of the pipeline's shared part (not a trial's or a cycle's) that others may reuse."""
    return ctx.trial is None and ctx.cycle is None and stage in reuse.REUSABLE


@contextmanager
def _stage(ctx: RunContext, stage: StageName) -> Iterator[StageRun]:
    tags = {WORKER: ctx.worker or LOCAL_WORKER, HOST: socket.gethostname()}
    if ctx.params.pretrain.draw:
        tags[FM_DRAW] = str(ctx.params.pretrain.draw)
    if ctx.trial is not None:
        tags |= {ROW: ctx.trial.row, REPLICATE: str(ctx.trial.replicate), TRIAL: ctx.trial.name}
    elif ctx.cycle is not None:
        tags[CYCLE] = str(ctx.cycle)
    name = ctx.stage_label(stage)
    if name in ctx.plan:
        log.info("stage %d/%d: %s", ctx.plan.index(name) + 1, len(ctx.plan), name)
    forget_made(ctx, stage)  # its outputs are about to change: nobody copies them meanwhile
    try:
        with (
            track_stage(
                ctx.params,
                stage,
                ctx.project_root,
                ctx.run_id,
                ctx.data_version,
                ctx.workspace,
                tags,
                name,
                edge_runs=not is_edge_stage(stage),  # edge stages' tasks make their own edge runs
            ) as run,
            listening(Aggregate(ProgressLines(name))),
        ):
            yield run
    finally:
        drop_bars(name)  # a stage that failed leaves no bar behind while other trials go on
    remember_made(ctx, stage, run.run_id)


def _reusable_trial(ctx: RunContext, stage: StageName) -> str | None:
    return ctx.trial.name if ctx.trial is not None and stage in reuse.TRIAL_REUSABLE else None


def forget_made(ctx: RunContext, stage: StageName) -> None:
    """Before ``stage`` runs (here or placed): its old outputs are no longer offered for reuse."""
    if _reusable_trial(ctx, stage):
        reuse.forget(ctx.workdir, ctx.stage_label(stage))
    elif _shared(ctx, stage):
        reuse.forget(ctx.workdir, stage)


def remember_made(ctx: RunContext, stage: StageName, run_id: str) -> None:
    """After ``stage`` made its outputs in ``ctx.workdir`` (stage run ``run_id``): offered for
    reuse to later pipelines with the same params and code (:mod:`ecogen.runtime.reuse`)."""
    if _shared(ctx, stage):
        reuse.remember(ctx.workdir, ctx.params, stage, run_id)
    if trial := _reusable_trial(ctx, stage):
        reuse.remember_trial(ctx.workdir, ctx.params, stage, trial, run_id)


def reused_stage(ctx: RunContext, stage: StageName) -> tuple[RunContext, dict[str, float]] | None:
    """A shared stage whose outputs another pipeline folder already holds for these params: they
    are copied here and a stage run records where from (param ``reused_from``); None when the stage
    has to run.  A trial's stage is looked for among other pipelines' trials (:func:`_reused_trial`)."""
    if ctx.reuse and ctx.trial is not None:
        return _reused_trial(ctx, stage)
    if not ctx.reuse or not _shared(ctx, stage):
        return None
    found = reuse.find(ctx.project_root, ctx.workdir, ctx.params, stage)
    if found is None:
        return None
    source, source_run = found
    where = f"runs/{source.name} (run {source_run})"
    log.info("reuse: %s made with the same params and code in %s; copied, not run again", stage, where)
    with _stage(ctx, stage) as run:
        reuse.copy_outputs(source, ctx.workdir, stage)
        flat = written_metrics(ctx, stage)
        if stage == "prepare":
            ctx = ctx.model_copy(update={"data_version": _version(ctx, run)})
        run.log(StageResult(name=stage, metrics=flat, params={"reused_from": where}))
    return ctx, {k: v for k, v in flat.items() if "/" not in k}


def _reused_trial(ctx: RunContext, stage: StageName) -> tuple[RunContext, dict[str, float]] | None:
    """A trial's stage that another pipeline's trial already ran with the same params and code, on
    the same finetune: its files are copied here, and its run's metrics with their histories."""
    assert ctx.trial is not None
    found = reuse.find_trial(ctx.project_root, ctx.workdir, ctx.params, stage)
    if found is None:
        return None
    source, source_trial, source_run = found
    where = f"runs/{source.name} trial {source_trial} (run {source_run})"
    label = ctx.stage_label(stage)
    log.info("reuse: %s made with the same params and code in %s; copied, not run again", label, where)
    with _stage(ctx, stage) as run:
        reuse.copy_trial_outputs(source, source_trial, ctx.workdir, ctx.trial.name, stage)
        copy_results(source_run, run.run_id, where)
    return ctx, {k: v for k, v in written_metrics(ctx, stage).items() if "/" not in k}


def _version(ctx: RunContext, run: StageRun) -> str:
    """DVC versions the prepared data of this pipeline folder; the runs record the version."""
    ensure_dvc_repo(ctx.project_root)
    version = version_data(ctx.project_root, ctx.workspace.data)
    log.info("%s: data version %s (DVC)", ctx.pipeline, version)
    run.data_version = version
    for run_id in (ctx.run_id, run.run_id):  # the prepared data, as the runs' dataset input
        set_data_version(run_id, version)
        log_dataset(run_id, version, ctx.workspace.data, ctx.pipeline)
    return version


def prepare_and_version(ctx: RunContext) -> RunContext:
    """The prepare stage, then DVC: `dvc add` + `dvc push` of the data; every later run gets its md5."""
    with _stage(ctx, "prepare") as run:
        result = run_stage("prepare", ctx.params, ctx.workspace)
        version = _version(ctx, run)
        run.log(result)
    return ctx.model_copy(update={"data_version": version})


def cloud_stage(ctx: RunContext, stage: StageName) -> dict[str, float]:
    if stage not in CLOUD_STAGES:
        raise ValueError(f"{stage} is not a cloud stage")
    with _stage(ctx, stage) as run:
        result = run_stage(stage, ctx.params, ctx.workspace)
        run.log(result)
    return result.metrics


@contextmanager
def edge_stage(ctx: RunContext, stage: StageName) -> Iterator[StageRun]:
    """The stage run that the per-edge tasks of one stage nest under."""
    with share_cores(len(ctx.params.data.domains)), _stage(ctx, stage) as run:
        yield run


def edge_task(ctx: RunContext, stage: StageName, stage_run_id: str, domain: str) -> StageResult:
    """One edge's share of a stage, in a child run of the stage run that exists while the edge
    trains (its epochs are logged there as they end).  Runs in a task runner's thread, in a copy
    of the stage's context: it takes the stage's share of the cores."""
    use_cores(cores())
    run_id = start_child_run(
        stage_run_id, f"edge-{domain}", "edge", ctx.data_version, {EDGE: f"edge-{domain}"}
    )
    live = LiveMetrics(run_id, domain)
    edge = StageRun(run_id=run_id, stage=stage, data_version=ctx.data_version, live=live)
    try:
        with listening(live):
            result = run_edge(stage, ctx.params, ctx.workspace, domain)
        edge.log(result)
    except BaseException as exc:
        if not tracking_lost(exc):
            finish_run(run_id, "KILLED" if is_stop(exc) else "FAILED")
        raise
    finish_run(run_id, "FINISHED")
    return result


def close_edge_stage(
    ctx: RunContext, stage: StageName, run: StageRun, children: list[StageResult]
) -> dict[str, float]:
    """Combine the edges, write metrics/plots, log the stage-level metrics and plots."""
    result = write_outputs(combine(stage, children), ctx.workspace)
    run.log(StageResult(name=stage, metrics=result.metrics, artifacts=result.artifacts))
    return result.metrics


def run_standalone_stage(stage: StageName, params: Params, project_root: Path) -> dict[str, float]:
    """`ecogen stage S` / `dvc repro`: the project root is the workspace; the stage run nests
    under the parent run of the `dvc repro` that called it (:mod:`ecogen.tracking.repro`)."""
    root = project_root.resolve()
    ws = Workspace(root)
    version = None if stage == "prepare" else data_version_from_lock(root)
    parent = repro_parent(params, root)
    if version:
        set_data_version(parent, version)
    try:
        with (
            track_stage(params, stage, root, parent, version, ws, edge_runs=True) as run,
            listening(ProgressLines(stage)),  # edges train in turn here: a line per edge
        ):
            result = run_stage(stage, params, ws)
            if stage == "prepare":  # the version this stage produced, as dvc.lock will record it
                run.data_version = hash_data(root, ws.data)
                for run_id in (parent, run.run_id):
                    set_data_version(run_id, run.data_version)
                    log_dataset(run_id, run.data_version, ws.data, DVC_PIPELINE)
            run.log(result)
        show_last_run(root, root)  # the project root's stage outputs, as `dvc metrics show` lists them
    except BaseException as exc:
        finish_run(parent, "KILLED" if is_stop(exc) else "FAILED")
        raise
    metrics = result.flat_metrics()
    headline = {f"{stage}.{k}": v for k, v in metrics.items() if "/" not in k}
    finish_pipeline_run(parent, headline)  # FINISHED until the repro's next stage, if any
    return metrics
