"""``track_stage``: one MLflow run and one energy measurement around one pipeline stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from ecogen.config.params import Params
from ecogen.runtime.interrupts import is_stop
from ecogen.runtime.progress import Aggregate, Listener, listening
from ecogen.stages.result import StageResult
from ecogen.tracking.energy import EnergyMeter, EnergyReading
from ecogen.tracking.live import EdgeRuns, LiveMetrics
from ecogen.tracking.mlflow_log import log_result
from ecogen.tracking.runs import (
    DATA_VERSION,
    DATA_VERSION_PARAM,
    KIND,
    STAGE,
    UNKNOWN_VERSION,
    experiment_id,
    flatten_params,
    log_params,
    log_tags,
    start_child_run,
)
from ecogen.tracking.uri import tracking_lost, use_tracking_uri
from ecogen.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class StageRun:
    """What the body of ``with track_stage(...)`` gets: the run to log into."""

    run_id: str
    stage: str
    data_version: str | None
    energy: EnergyReading | None = None  # filled on exit when energy tracking is enabled
    duration_s: float | None = None  # filled on exit
    live: LiveMetrics | None = None  # what was logged while the stage ran
    edges: EdgeRuns | None = None  # edge runs made while the stage ran (edge_runs=True)

    def log(self, result: StageResult) -> list[str]:
        """Log a stage's result into this run; returns the ids of the child runs it created."""
        logged = self.live.logged if self.live is not None else ()
        existing = self.edges.existing() if self.edges is not None else None
        return log_result(self.run_id, result, self.data_version, logged=logged, existing=existing)


def start_stage_run(
    params: Params,
    stage: str,
    project_root: Path,
    parent_run_id: str | None,
    data_version: str | None,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
) -> str:
    """A stage run under a pipeline run, or standalone (``parent_run_id=None``).

    Stage runs carry the flattened params too, so stage runs of different pipelines can be
    compared without walking up to their parents.
    """
    uri = use_tracking_uri(params.tracking, project_root)
    tags = {STAGE: stage, **(tags or {})}
    run_name = run_name or stage
    client = MlflowClient()
    if parent_run_id is not None:
        run_id = start_child_run(parent_run_id, run_name, "stage", data_version, tags)
    else:
        exp_id = experiment_id(client, params.tracking.experiment, uri, project_root)
        tags |= {KIND: "stage", DATA_VERSION: data_version or UNKNOWN_VERSION}
        run_id = client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
        if data_version:
            log_params(client, run_id, {DATA_VERSION_PARAM: data_version})
    log_params(client, run_id, flatten_params(params))
    return run_id


@contextmanager
def track_stage(
    params: Params,
    stage: str,
    project_root: Path,
    parent_run_id: str | None,
    data_version: str | None,
    workspace: Workspace,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
    edge_runs: bool = False,
) -> Iterator[StageRun]:
    """Run the body inside a stage run, measuring its energy when ``params.energy.enabled``.

    On exit the run gets ``duration_s`` and, when measured, ``energy_kwh``,
    ``emissions_kg_co2eq`` (plus per-component energy and power) and tags saying how CodeCarbon
    measured them (``ecogen.energy.*``).  Raising inside the body still stops the meter and logs
    what it measured, marks the run FAILED (KILLED for Ctrl-C) and re-raises.
    CodeCarbon writes its CSV to ``<workspace>/emissions/``.  While the body runs, what it
    reports to :mod:`ecogen.runtime.progress` is logged into the run at once (:mod:`ecogen.tracking.live`);
    with ``edge_runs``, an edge's steps go into an edge run made at its first step (for stages
    whose edges train inside the stage's own call; edge tasks make their own runs).
    """
    run_id = start_stage_run(params, stage, project_root, parent_run_id, data_version, tags, run_name)
    live = LiveMetrics(run_id)
    edges = EdgeRuns(run_id, data_version) if edge_runs else None
    handle = StageRun(run_id=run_id, stage=stage, data_version=data_version, live=live, edges=edges)
    listeners: list[Listener] = [Aggregate(live), *([edges] if edges is not None else [])]
    meter = None
    if params.energy.enabled:
        meter = EnergyMeter(params.energy, workspace.root / "emissions", project_name=stage)
    start = time.perf_counter()
    try:
        if meter is not None:  # inside: a stop arriving as it starts still stops it
            meter.start()
        with listening(*listeners):  # epochs and rounds logged as they end
            yield handle
    except BaseException as exc:
        _close(handle, meter, start, exc)
        raise
    _close(handle, meter, start, None)


def _close(handle: StageRun, meter: EnergyMeter | None, start: float, exc: BaseException | None) -> None:
    handle.duration_s = time.perf_counter() - start
    handle.energy = meter.stop() if meter is not None else None
    status = "FINISHED" if exc is None else "KILLED" if is_stop(exc) else "FAILED"
    if exc is not None and tracking_lost(exc):  # nothing more can be logged: --resume continues
        return
    if exc is not None and handle.edges is not None:
        handle.edges.terminate(status)
    client = MlflowClient()
    try:
        _log_measurements(client, handle)
        if exc is not None:
            log_tags(client, handle.run_id, {"ecogen.error": f"{type(exc).__name__}: {exc}"[:5000]})
    except Exception:
        if exc is None:
            client.set_terminated(handle.run_id, "FAILED")
            raise
        # The stage's own exception is the one to propagate; do not mask it.
        log.exception("could not log the measurements of failed stage %s", handle.stage)
    client.set_terminated(handle.run_id, status)


def _log_measurements(client: MlflowClient, handle: StageRun) -> None:
    now = int(time.time() * 1000)
    values = {"duration_s": handle.duration_s or 0.0}
    tags = {"ecogen.energy.status": "disabled"}
    if handle.energy is not None:
        values |= handle.energy.metrics()
        tags = handle.energy.tags
    client.log_batch(
        handle.run_id, metrics=[Metric(key, float(value), now, 0) for key, value in values.items()]
    )
    log_tags(client, handle.run_id, tags)
