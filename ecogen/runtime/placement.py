"""Stages placed on work pools: what the parent and a worker do around a placed flow run.

The parent sends the pipeline folder's files to the MLflow artifact store
(:mod:`ecogen.tracking.exchange`), starts the stages as a flow run on the pool and waits; the
worker receives the files into a folder of its own (its flow run's working directory: nothing is
shared with the parent's disk), runs the stages exactly as the parent would, and sends what they
wrote; the parent receives it and carries on.  Placement needs a tracking server every machine
reaches (``tracking.uri`` or ``$MLFLOW_TRACKING_URI`` = ``http(s)://...``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ecogen.config import ConfigError
from ecogen.config.pipelines import StageName
from ecogen.pipeline import RunContext, forget_made, remember_made, written_metrics
from ecogen.tracking import exchange
from ecogen.tracking.resume import finished_stage_run
from ecogen.tracking.uri import handed_uri, redact_uri, resolve_tracking_uri, use_tracking_uri

log = logging.getLogger("ecogen.runtime.placement")

DEPLOYMENT_FLOW = "ecogen-placed"  # the flow every placed run is a run of; one deployment per pool


def deployment_name(pool: str) -> str:
    return f"{DEPLOYMENT_FLOW}/{pool}"


class PlacedRunFailed(RuntimeError):
    """A placed flow run did not complete; the message names it, its pool and its state."""


def shared_tracking_uri(ctx: RunContext) -> str | None:
    """The tracking URI a worker is handed: the parent's, unless it holds credentials (then the
    worker's own ``$MLFLOW_TRACKING_URI`` is used, where the secret belongs)."""
    return handed_uri(resolve_tracking_uri(ctx.params.tracking, ctx.project_root))


def check_placeable(uri: str, prefect_api: str | None, pools: list[str]) -> None:
    """Placed stages need the Prefect server their workers poll, and exchange files through the
    tracking server: neither a temporary server nor a local store can serve."""
    if pools and not prefect_api:
        raise ConfigError(
            f"stages are placed on work pools ({', '.join(pools)}): set PREFECT_API_URL to the Prefect "
            "server their workers poll (`prefect server start`, then `prefect worker start --pool NAME`)"
        )
    if pools and not uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"stages are placed on work pools ({', '.join(pools)}), whose workers share no disk with "
            f"this machine, but runs are tracked in {redact_uri(uri)}: set tracking.uri in params.yaml "
            "(or MLFLOW_TRACKING_URI) to an `mlflow server --artifacts-destination ...` they all reach"
        )


def send_inputs(ctx: RunContext, stages: list[StageName], label: str) -> None:
    """Parent, before placing: the pipeline folder's files the store does not hold yet (and the
    stages' old outputs no longer offered for reuse)."""
    use_tracking_uri(ctx.params.tracking, ctx.project_root)
    for stage in stages:
        forget_made(ctx, stage)
    exchange.send(ctx.run_id, ctx.workdir, f"{label} (inputs)")


def on_worker(
    ctx: RunContext, root: Path, worker: str | None, tracking_uri: str | None, label: str
) -> RunContext:
    """Worker: the parent's context moved to ``root`` (this flow run's own folder), the inputs
    received into it.  ``worker``: the name its stage runs are tagged with."""
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # what use_tracking_uri resolves here
    root = root.resolve()
    local = ctx.model_copy(
        update={"project_root": root, "workdir": root / "runs" / ctx.pipeline, "worker": worker or "unnamed"}
    )
    use_tracking_uri(local.params.tracking, root)
    exchange.receive(ctx.run_id, local.workdir, f"{label} (inputs)")
    return local


def send_outputs(ctx: RunContext, label: str) -> None:
    """Worker, after its stages: what they wrote."""
    exchange.send(ctx.run_id, ctx.workdir, f"{label} (outputs)")


def receive_outputs(ctx: RunContext, stages: list[StageName], label: str) -> dict[str, float]:
    """Parent, after the placed run completed: its outputs into the pipeline folder; returns the
    stages' metrics as ``{stage.name: value}`` (what a stage run in this process returns)."""
    exchange.receive(ctx.run_id, ctx.workdir, f"{label} (outputs)")
    metrics: dict[str, float] = {}
    trial = (ctx.trial.row, ctx.trial.replicate) if ctx.trial else None
    for stage in stages:
        path = ctx.workspace.metrics / f"{stage}.json"
        run = finished_stage_run(ctx.run_id, stage, ctx.params, trial, ctx.cycle)
        if not path.is_file() or run is None:
            raise PlacedRunFailed(
                f"{label}: the placed run completed but {stage} has no finished run or metrics"
            )
        remember_made(ctx, stage, run.info.run_id)  # here, as a stage run in this process would
        metrics |= {f"{stage}.{k}": v for k, v in written_metrics(ctx, stage).items() if "/" not in k}
    return metrics
