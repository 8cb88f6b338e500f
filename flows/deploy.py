"""Pipelines as Prefect deployments with the schedules from pipelines.yaml."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.runner.storage import GitRepository
from prefect.schedules import Cron, Interval, Schedule

from ecogen.config import ConfigError
from ecogen.config.pipelines import Pipeline
from ecogen.config.pipelines import Schedule as ScheduleSpec
from flows.pipeline import pipeline_flow, placed_flow


def check_pools(pools: list[str]) -> None:
    """ConfigError in one line when a work pool does not exist on the server (not a traceback)."""
    api = os.environ.get("PREFECT_API_URL", "the Prefect server")
    with get_client(sync_client=True) as client:
        for pool in pools:
            try:
                client.read_work_pool(pool)
            except (httpx.HTTPError, OSError) as err:
                raise ConfigError(
                    f"the Prefect server {api} does not answer ({type(err).__name__}): start it "
                    "(`prefect server start`) or point PREFECT_API_URL at the one the workers poll"
                ) from None
            except ObjectNotFound:
                raise ConfigError(
                    f"work pool {pool!r} does not exist on {api}: create it with "
                    f"`prefect work-pool create {pool} --type process` and start a worker with "
                    f"`prefect worker start --pool {pool}`"
                ) from None


def deploy_placed(pools: list[str]) -> None:
    """The deployment each pool's workers run placed stages from (``ecogen-placed/<pool>``),
    created or updated; ConfigError in one line when a pool does not exist on the server."""
    if not pools:
        return
    check_pools(pools)
    for pool in pools:
        # module entrypoint: workers run the installed ecogen/flows packages, wherever they are;
        # apply() registers it without the table flow.deploy prints
        deployment: RunnerDeployment = placed_flow.to_deployment(  # type: ignore[assignment]
            name=pool,
            work_pool_name=pool,
            description=f"EcoGen stages placed on work pool {pool} (started by pipeline runs)",
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        deployment.apply(work_pool_name=pool)


def _schedule(spec: ScheduleSpec | None) -> list[Schedule]:
    if spec is None:
        return []
    if spec.cron is not None:
        return [Cron(spec.cron, timezone=spec.timezone)]
    assert spec.interval_seconds is not None  # the model guarantees exactly one kind
    return [Interval(spec.interval_seconds, timezone=spec.timezone)]


# One run of a pipeline deployment at a time: a run triggered (or scheduled) while the previous
# one still goes waits in the queue (Prefect's deployment concurrency limit), so a stream never
# takes in an increment twice nor two at once; the project lock (ecogen/runtime/runlock.py) backs it up.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def _parameters(name: str, profile: str | None, files: tuple[str, str]) -> dict[str, object]:
    """What a deployment pins: the pipeline, the profile and which files configure it.  Their
    contents are read when a run starts; ``overrides`` (``KEY=VALUE``, as ``--set``) are given
    per run, in the UI's form or with ``prefect deployment run ... --param``."""
    return dict(pipeline=name, profile=profile, overrides=[], params_file=files[0], pipelines_file=files[1])


def project_source(project_root: Path) -> GitRepository:
    """Where a worker gets the project for a whole pipeline it runs: the commit history of the
    project's ``origin`` remote, cloned at each run (commit and push params.yaml; no redeploy)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=project_root, capture_output=True, text=True, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    url, branch = git("remote", "get-url", "origin"), git("rev-parse", "--abbrev-ref", "HEAD")
    if not url:
        raise ConfigError(
            f"{project_root} has no git remote 'origin': a pipeline with a work_pool runs on a worker "
            "that clones the project from it (`git remote add origin URL`, then push)"
        )
    return GitRepository(url=url, branch=branch if branch and branch != "HEAD" else None)


def serve_pipelines(
    pipelines: dict[str, Pipeline],
    project_root: Path,
    profile: str | None = None,
    files: tuple[str, str] = ("params.yaml", "pipelines.yaml"),
) -> None:
    """Serve in this process every pipeline without a work pool; register the others to their pool,
    whose workers clone the project from its ``origin`` remote at each run.

    Deployments pin only the pipeline and the profile: a run reads the project's params.yaml and
    pipelines.yaml as they are when it starts.  With a ``profile`` the deployments are named
    ``<pipeline>-<profile>``.
    """
    check_pools([spec.work_pool for spec in pipelines.values() if spec.work_pool])
    deploy_placed(list(dict.fromkeys(p for spec in pipelines.values() for p in spec.placed_pools)))
    served = []
    for name, spec in pipelines.items():
        deployment: RunnerDeployment = pipeline_flow.to_deployment(  # type: ignore[assignment]
            name=f"{name}-{profile}" if profile else name,
            work_pool_name=spec.work_pool,
            parameters=_parameters(name, profile, files),
            schedules=_schedule(spec.schedule),
            concurrency_limit=ONE_AT_A_TIME,
            description=spec.description,
            entrypoint_type=EntrypointType.MODULE_PATH,  # the installed package runs it
        )
        if spec.work_pool:
            deployment.storage = project_source(project_root)  # pull step: the project, cloned per run
            deployment.apply(work_pool_name=spec.work_pool)
        else:
            served.append(deployment)
    if served:
        serve(*served)  # type: ignore[arg-type]
