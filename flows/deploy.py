"""Pipelines as Prefect deployments with the schedules from pipelines.yaml."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.deployments.runner import EntrypointType
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron, Interval, Schedule

from ecogen.config import ConfigError
from ecogen.config.load import expand_trials
from ecogen.config.params import Params
from ecogen.config.pipelines import Pipeline
from ecogen.config.pipelines import Schedule as ScheduleSpec
from ecogen.tracking.uri import pinnable
from flows.pipeline import pipeline_flow, placed_flow


def check_pools(pools: list[str]) -> None:
    """ConfigError in one line when a work pool does not exist on the server (not a traceback)."""
    api = os.environ.get("PREFECT_API_URL", "the Prefect server")
    with get_client(sync_client=True) as client:
        for pool in pools:
            try:
                client.read_work_pool(pool)
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
        # module entrypoint: workers run the installed ecogen/flows packages, wherever they are
        placed_flow.deploy(
            name=pool,
            work_pool_name=pool,
            description=f"EcoGen stages placed on work pool {pool} (started by pipeline runs)",
            build=False,
            push=False,
            entrypoint_type=EntrypointType.MODULE_PATH,
            print_next_steps=False,
        )


def _schedule(spec: ScheduleSpec | None) -> list[Schedule]:
    if spec is None:
        return []
    if spec.cron is not None:
        return [Cron(spec.cron, timezone=spec.timezone)]
    assert spec.interval_seconds is not None  # the model guarantees exactly one kind
    return [Interval(spec.interval_seconds, timezone=spec.timezone)]


def _parameters(
    name: str, spec: Pipeline, params: Params, project_root: Path, profile: str | None
) -> dict[str, object]:
    return {
        "pipeline": name,
        "stages": list(spec.stages),
        "params": pinnable(params).model_dump(mode="json"),
        "project_root": str(project_root.resolve()),
        "trials": [t.model_dump(mode="json") for t in expand_trials(params, spec.trials)],
        "trial_stages": list(spec.trials.stages) if spec.trials else [],
        "trials_at_once": spec.trials.parallel if spec.trials else 1,
        "cycle_stages": list(spec.cycle or []),
        "profile": profile,
        "pools": {str(k): v for k, v in spec.pools.items()},
        "trials_pool": spec.trials.pool if spec.trials else None,
    }


def serve_pipelines(
    pipelines: dict[str, tuple[Pipeline, Params]], project_root: Path, profile: str | None = None
) -> None:
    """Serve in this process every pipeline without a work pool; register the others to their pool.

    Parameters (the validated params) are pinned at deploy time: redeploy after editing params.yaml.
    With a ``profile`` the deployments are named ``<pipeline>-<profile>``.
    """
    check_pools([spec.work_pool for spec, _ in pipelines.values() if spec.work_pool])
    deploy_placed(list(dict.fromkeys(p for spec, _ in pipelines.values() for p in spec.placed_pools)))
    served = []
    for name, (spec, params) in pipelines.items():
        parameters = _parameters(name, spec, params, project_root, profile)
        deployment = f"{name}-{profile}" if profile else name
        if spec.work_pool:
            # module entrypoint: workers run the installed ecogen/flows packages, wherever they are
            pipeline_flow.deploy(
                name=deployment,
                work_pool_name=spec.work_pool,
                parameters=parameters,
                schedules=_schedule(spec.schedule),
                description=spec.description,
                build=False,
                push=False,
                entrypoint_type=EntrypointType.MODULE_PATH,
                print_next_steps=False,
            )
        else:
            served.append(
                pipeline_flow.to_deployment(
                    name=deployment,
                    parameters=parameters,
                    schedules=_schedule(spec.schedule),
                    description=spec.description,
                    entrypoint_type=EntrypointType.MODULE_PATH,
                )
            )
    if served:
        serve(*served)  # type: ignore[arg-type]
