"""The ``ecogen`` command: run, stage, validate, deploy.

Configuration is parsed and validated before anything else happens; a bad file or ``--set``
prints one line naming the key and exits with status 2, having written nothing.  Heavy imports
(torch, prefect, mlflow) happen only after validation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ecogen.config import STAGE_ORDER, ConfigError, Params, Pipelines, load_params, load_pipelines

app = typer.Typer(
    name="ecogen",
    help="EcoGen: cloud pre-training, edge PEFT, HFSL on device clusters and split inference — "
    "orchestrated by Prefect, tracked in MLflow, versioned by DVC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read.")]
PipelinesOpt = Annotated[Path, typer.Option("--pipelines", help="pipelines.yaml to read.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a parameter, e.g. --set hfsl.rounds=3 (repeatable)."),
]


def _fail(err: ConfigError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(code=2)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _resolve(pipelines: Pipelines, name: str | None) -> str:
    name = name or pipelines.default
    if name not in pipelines.pipelines:
        raise ConfigError(f"unknown pipeline {name!r}; defined: {', '.join(pipelines.pipelines)}")
    return name


@app.command()
def run(
    pipeline: Annotated[str | None, typer.Argument(help="Pipeline name from pipelines.yaml.")] = None,
    params: ParamsOpt = Path("params.yaml"),
    pipelines: PipelinesOpt = Path("pipelines.yaml"),
    set_: SetOpt = None,
) -> None:
    """Run a pipeline as a Prefect flow (outputs under runs/PIPELINE/, tracked in MLflow)."""
    try:
        specs = load_pipelines(pipelines)
        name = _resolve(specs, pipeline)
        cfg = load_params(params, specs.pipelines[name].overrides, set_ or [])
    except ConfigError as err:
        raise _fail(err) from None
    _setup_logging()
    from ecogen.environment import quiet_defaults

    quiet_defaults()
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(
        pipeline=name, stages=list(specs.pipelines[name].stages), params=cfg, project_root=str(Path.cwd())
    )
    typer.echo(f"pipeline {name} finished: MLflow run {summary['run_id']}")
    for key, value in sorted(summary["metrics"].items()):
        typer.echo(f"  {key} = {value:.6g}")


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGE_ORDER)}.")],
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run one stage on the project's data/, artifacts/ and metrics/ (what dvc.yaml calls)."""
    try:
        if name not in STAGE_ORDER:
            raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGE_ORDER)}")
        cfg = load_params(params)
    except ConfigError as err:
        raise _fail(err) from None
    _setup_logging()
    from ecogen.environment import quiet_defaults

    quiet_defaults()
    from ecogen.pipeline import run_standalone_stage

    metrics = run_standalone_stage(name, cfg, Path.cwd())  # type: ignore[arg-type]
    for key, value in sorted(metrics.items()):
        typer.echo(f"  {key} = {value:.6g}")


@app.command()
def validate(
    params: ParamsOpt = Path("params.yaml"), pipelines: PipelinesOpt = Path("pipelines.yaml")
) -> None:
    """Check params.yaml and pipelines.yaml (with every pipeline's overrides applied)."""
    try:
        load_params(params)
        specs = load_pipelines(pipelines)
        for pname, spec in specs.pipelines.items():
            try:
                load_params(params, spec.overrides)
            except ConfigError as err:
                raise ConfigError(f"pipeline {pname}: {err}") from None
    except ConfigError as err:
        raise _fail(err) from None
    typer.echo(f"ok: {params} and {pipelines} ({', '.join(specs.pipelines)})")


@app.command()
def deploy(
    pipeline: Annotated[list[str] | None, typer.Argument(help="Pipelines to serve (default: all).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    pipelines: PipelinesOpt = Path("pipelines.yaml"),
) -> None:
    """Serve pipelines as Prefect deployments on their schedules (blocks until stopped).

    Pipelines with a ``work_pool`` are registered to that pool for its workers instead.
    """
    try:
        specs = load_pipelines(pipelines)
        names = [_resolve(specs, p) for p in (pipeline or list(specs.pipelines))]
        configs: dict[str, Params] = {n: load_params(params, specs.pipelines[n].overrides) for n in names}
    except ConfigError as err:
        raise _fail(err) from None
    _setup_logging()
    from ecogen.environment import quiet_defaults

    quiet_defaults()
    from flows.deploy import serve_pipelines

    serve_pipelines({n: (specs.pipelines[n], configs[n]) for n in names}, project_root=Path.cwd())


if __name__ == "__main__":
    app()
