"""The ``ecogen`` command: run, stage, validate, deploy, report, promote, rollback, serve.

Configuration is parsed and validated before anything else happens; a bad file or ``--set``
prints one line naming the key and exits with status 2, having written nothing.  Heavy imports
(torch, prefect, mlflow) happen only after validation.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from ecogen.config import (
    STAGE_ORDER,
    ConfigError,
    Params,
    expand_trials,
    load_params,
    load_pipelines,
    profile_overrides,
)
from ecogen.config.load import RunConfig, parse_places, pipeline_name, resolve_run
from ecogen.config.pipelines import NO_PROFILE
from ecogen.data.errors import DataError
from ecogen.runtime.interrupts import stop_on_sigterm


class _Command(TyperCommand):
    """Help as plain text: values named by their metavar, not by type labels (``<str>``), and — on
    commands that take a pipeline — the pipelines and profiles of ./pipelines.yaml listed below."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:  # an argument's metavar says what it is; typer adds ``<str>``
            if isinstance(param, TyperArgument):
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        super().format_help(ctx, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        if any(p.name == "pipeline" for p in self.params):
            _list_pipelines(Path("pipelines.yaml"), formatter)
        super().format_epilog(ctx, formatter)


def _list_pipelines(path: Path, formatter: Any) -> None:
    try:
        specs = load_pipelines(path)
    except ConfigError:  # no or a broken pipelines.yaml here: `ecogen validate` says what is wrong
        return
    with formatter.section(f"Pipelines in {path}"):
        formatter.write_dl([(name, spec.description) for name, spec in specs.pipelines.items()])
    if specs.profiles:
        with formatter.section("Profiles"):
            formatter.write_text(", ".join(specs.profiles))


app = typer.Typer(
    name="ecogen",
    rich_markup_mode=None,
    help="EcoGen: cloud pre-training, edge PEFT, HFSL on device clusters and split inference — "
    "orchestrated by Prefect, tracked in MLflow, versioned by DVC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read.", metavar="FILE")]
PipelinesOpt = Annotated[Path, typer.Option("--pipelines", help="pipelines.yaml to read.", metavar="FILE")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a parameter, e.g. --set hfsl.rounds=3 (repeatable).", metavar="KEY=VALUE"
    ),
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="A profile from pipelines.yaml, e.g. cpu.", metavar="NAME")
]


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(code=2)


@contextmanager
def _refused(kind: type[Exception] = ConfigError) -> Iterator[None]:
    """A ``kind`` of error in the body is said in one line: exit 2."""
    try:
        yield
    except kind as err:
        raise _fail(err) from None


ERROR_LOG = Path("runs") / ".last-error.log"


def _fail_logged(err: object, root: Path, code: int) -> typer.Exit:
    """One line, exit ``code``; the traceback goes to runs/.last-error.log (and the line says so,
    unless it could not be written, e.g. on a full disk).  For a problem with the user's data (the
    file and what to do, exit 2) and a run that failed (exit 1)."""
    saved = f" (traceback in {ERROR_LOG})"
    try:
        path = root / ERROR_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
    except OSError:
        saved = ""
    typer.echo(f"error: {err}{saved}", err=True)
    return typer.Exit(code=code)


# OSError's and SQLite's words; torch's zip writer reports a short write without an errno (a
# tensor file cut off as the disk filled: "unexpected pos 832 vs 726" in a fresh-clone CI run)
DISK_FULL = (
    "No space left on device",
    "database or disk is full",
    "PytorchStreamWriter failed writing file",
    "unexpected pos",
)


def _disk_full(err: BaseException) -> BaseException | None:
    """The out-of-space error behind ``err``: an OSError ENOSPC / EDQUOT, raised as it is or wrapped
    (SQLite's "database or disk is full" under MLflow and SQLAlchemy); one that names its file if
    the chain holds one."""
    found: list[BaseException] = []
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        no_space = isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
        if no_space or any(text in str(cause) for text in DISK_FULL):
            found.append(cause)
        cause = cause.__cause__ or cause.__context__
    named = [e for e in found if isinstance(e, OSError) and e.filename]
    return (named or found or [None])[0]


def _placed_failed(err: BaseException) -> bool:
    """A stage placed on a work pool failed there (:class:`ecogen.runtime.placement.PlacedRunFailed`)."""
    return type(err).__name__ == "PlacedRunFailed"


def _tracking_lost(err: BaseException) -> str | None:
    """The one line for a tracking server lost mid-run (None: another error); MLflow is loaded by
    then, as a run only gets that far once its tracking store answered."""
    import sys

    if "mlflow" not in sys.modules:
        return None
    from ecogen.tracking.uri import tracking_lost

    return tracking_lost(err)


def _fail_on_disk(err: BaseException, root: Path) -> typer.Exit:
    """Out of disk space: one line naming the file, exit 1 (the traceback to runs/.last-error.log
    when there is room for it)."""
    where = f" writing {err.filename}" if isinstance(err, OSError) and err.filename else f" under {root}"
    with suppress(OSError):
        where += f" ({shutil.disk_usage(root).free / 2**20:.1f} MiB free)"
    return _fail_logged(
        f"out of disk space{where}: free space on that disk, then run again "
        "(`ecogen run PIPELINE --resume` keeps the stages that finished)",
        root,
        1,
    )


def _check_tracking(cfg: Params, root: Path) -> None:
    """A tracking server that does not answer is said in one line before any work starts."""
    from ecogen.tracking.uri import check_tracking

    with _refused():
        check_tracking(cfg.tracking, root)


class _ReadableLogs(logging.Filter):
    """What the terminal shows of Prefect's and MLflow's logs:

    * a problem with the user's data, a full disk, a tracking server gone or a stage that failed on
      a worker is said once, in one line, by the CLI —
      Prefect would log the exception with its traceback at every level (task, subflow, flow);
    * Prefect's "Finished in state Completed()" says which flow or task finished.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if isinstance(exc, DataError) or _disk_full(exc) or _tracking_lost(exc) or _placed_failed(exc):
                return False
        message = record.getMessage()
        if any(name in message for name in ("DataError", "DataNotFound", *DISK_FULL)):
            return False
        if _tracking_lost(Exception(message)):
            return False
        if record.name in ("prefect.flow_runs", "prefect.task_runs") and message.startswith(
            "Finished in state"
        ):
            if run := getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None):
                record.msg, record.args = f"{run}: {message}", ()
        return True


def _setup_logging() -> None:
    """Logging set up, and the libraries' quiet defaults (before Prefect is imported)."""
    from ecogen.runtime.environment import quiet_defaults

    quiet_defaults()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpcore"):  # every Prefect API call, hundreds per experiment
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # MLflow's retries of a server that does not answer, a line each: the CLI says it once
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    _filter_user_errors()


def _filter_user_errors() -> None:
    """Again after Prefect's import, which replaces the root logger's handlers (MLflow's logger
    has handlers of its own)."""
    for handler in [*logging.getLogger().handlers, *logging.getLogger("mlflow").handlers]:
        if not any(isinstance(f, _ReadableLogs) for f in handler.filters):
            handler.addFilter(_ReadableLogs())


@app.command(cls=_Command)
def run(
    pipeline: Annotated[
        str | None,
        typer.Argument(help="Pipeline from pipelines.yaml (default: its `default`).", metavar="PIPELINE"),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    pipelines: PipelinesOpt = Path("pipelines.yaml"),
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the newest run of PIPELINE with this profile if it did not finish "
            "(same params): stages and trials it finished are not run again.",
        ),
    ] = False,
    no_reuse: Annotated[
        bool,
        typer.Option(
            "--no-reuse",
            help="Run prepare, pretrain and finetune even when another pipeline under runs/ already "
            "made them with the same params and code (by default their outputs are copied).",
        ),
    ] = False,
    trials_at_once: Annotated[
        int | None,
        typer.Option(
            "--trials-at-once",
            min=1,
            metavar="N",
            help="An experiment's trials run N at a time, sharing the cores (default: its "
            "trials.parallel in pipelines.yaml).",
        ),
    ] = None,
    place: Annotated[
        list[str] | None,
        typer.Option(
            "--place",
            metavar="STAGE=POOL",
            help="Run STAGE on the Prefect work pool POOL's workers (trials=POOL: an experiment's "
            "trials), over pipelines.yaml's pools; repeatable. Needs PREFECT_API_URL and a "
            "tracking server.",
        ),
    ] = None,
) -> None:
    """Run a pipeline as a Prefect flow (outputs under runs/PIPELINE/, tracked in MLflow)."""
    root = Path.cwd()
    with _refused():
        places = parse_places(place or [])
        run_cfg = resolve_run(root, pipeline, profile, set_ or [], params, pipelines, places)
    _setup_run(run_cfg.params, root)
    if not _ready_to_run(run_cfg, root, profile, resume):
        return
    # ``ecogen run``'s options as the pipeline flow's keyword arguments
    flow_args: dict[str, Any] = dict(pipeline=run_cfg.name, profile=profile, overrides=list(set_ or []))
    flow_args |= dict(resume=resume, reuse=not no_reuse, trials_at_once=trials_at_once, places=places)
    flow_args |= dict(params_file=str(params), pipelines_file=str(pipelines))
    summary = _run_flow(root, run_cfg.name, run_cfg.spec.placed_pools, flow_args)
    _echo_summary(run_cfg, summary, root)


def _setup_run(cfg: Params, root: Path) -> None:
    """Logging and the libraries' quiet defaults set up, the tracking server checked."""
    _setup_logging()
    _check_tracking(cfg, root)


def _ready_to_run(run_cfg: RunConfig, root: Path, profile: str | None, resume: bool) -> bool:
    """What can be said in one line before a server starts is said: work pools that cannot take the
    placed stages, a run that cannot be resumed (exit 2); False: a stream with nothing to take in
    (said, nothing to run)."""
    name, spec, cfg = run_cfg.name, run_cfg.spec, run_cfg.params
    if spec.placed_pools:  # the pools exist and can reach the tracking server
        from ecogen.runtime.placement import check_placeable
        from ecogen.tracking.uri import resolve_tracking_uri

        with _refused():
            uri = resolve_tracking_uri(cfg.tracking, root)
            check_placeable(uri, os.environ.get("PREFECT_API_URL"), spec.placed_pools)
    if cfg.stream.increments is not None:  # a stream with nothing to take in: said, nothing run
        from ecogen.served import NothingToDo, resolve_increment

        try:
            resolve_increment(cfg, name, root, profile)
        except NothingToDo as why:
            typer.echo(f"{name}: {why}")
            return False
    if resume:  # said here, in one line, before a server starts; the flow finds the same run
        from ecogen.pipeline import ResumeError, resumable

        with _refused(ResumeError):
            resumable(name, cfg, root, profile)
    return True


def _run_flow(root: Path, name: str, placed_pools: list[str], flow_args: dict[str, Any]) -> dict[str, Any]:
    """The pipeline flow run under the project's lock, with a Prefect server of its own; its summary.
    An error the user can act on is said in one line (exit 2; 1 for a tracking server lost, a stage
    failed on a worker or a full disk); any other is raised as it is."""
    from ecogen.runtime.prefect_server import ServerError, prefect_server
    from ecogen.runtime.runlock import ProjectBusy, project_lock

    try:
        with (
            project_lock(root, name),
            stop_on_sigterm(),
            prefect_server(root / "runs" / ".prefect-server.log") as server_ready,
        ):
            summary = _flow_on_server(server_ready, placed_pools, flow_args)
    except (ProjectBusy, ServerError, ConfigError) as err:
        raise _fail(err) from None
    except DataError as err:
        raise _fail_logged(err, root, 2) from None
    except Exception as err:
        if (exit_ := _run_failed(err, root)) is None:
            raise
        raise exit_ from None
    return summary


def _flow_on_server(
    server_ready: Callable[[], str], placed_pools: list[str], flow_args: dict[str, Any]
) -> dict[str, Any]:
    """Once the Prefect server answers: placed stages deployed, the flow run with live progress."""
    # imported while the server boots
    import mlflow  # noqa: F401  (its logging set up, so that its handlers get the filter)
    from prefect.logging.handlers import APILogWorker

    from flows.deploy import deploy_placed
    from flows.pipeline import pipeline_flow

    server_ready()
    _filter_user_errors()
    deploy_placed(placed_pools)
    from ecogen.runtime.terminal import live_progress

    try:
        with live_progress():
            summary: dict[str, Any] = pipeline_flow(**flow_args)  # type: ignore[assignment]
    finally:  # the run's last log lines reach the server before it stops
        APILogWorker.drain_all(timeout=5)
    return summary


def _run_failed(err: Exception, root: Path) -> typer.Exit | None:
    """The exit for a run that failed in a way said in one line (the traceback to
    runs/.last-error.log): a tracking server lost, a stage failed on a worker, a full disk; None for
    any other error.  Called while ``err`` is handled."""
    if lost := _tracking_lost(err):
        return _fail_logged(lost, root, 1)
    if _placed_failed(err):  # its traceback is in the worker's flow run (Prefect UI, Logs)
        return _fail_logged(err, root, 1)
    full = _disk_full(err)
    return None if full is None else _fail_on_disk(full, root)


def _echo_summary(run_cfg: RunConfig, summary: dict[str, Any], root: Path) -> None:
    """The finished run's MLflow run id and its summary lines."""
    typer.echo(f"pipeline {run_cfg.name} finished: MLflow run {summary['run_id']}")
    from ecogen.tracking import resolve_tracking_uri
    from ecogen.tracking.run_summary import summary_lines

    for line in summary_lines(summary["run_id"], resolve_tracking_uri(run_cfg.params.tracking, root)):
        typer.echo(line)


@app.command(cls=_Command)
def stage(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGE_ORDER)}.", metavar="STAGE")],
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run one stage on the project's data/, artifacts/ and metrics/ (what dvc.yaml calls)."""
    root = Path.cwd()
    with _refused():
        if name not in STAGE_ORDER:
            raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGE_ORDER)}")
        cfg = load_params(params)
    _setup_run(cfg, root)
    logging.getLogger("ecogen").info("stage %s: starting (loading torch)", name)
    from ecogen.pipeline import run_standalone_stage  # imports MLflow, which sets up its logging
    from ecogen.runtime.runlock import ProjectBusy, project_lock
    from ecogen.runtime.terminal import live_progress

    _filter_user_errors()
    try:
        with project_lock(root, name, kind="stage"), stop_on_sigterm(), live_progress():
            metrics = run_standalone_stage(name, cfg, root)  # type: ignore[arg-type]
    except ProjectBusy as err:
        raise _fail(err) from None
    except DataError as err:
        raise _fail_logged(err, root, 2) from None
    except Exception as err:
        if (full := _disk_full(err)) is None:
            raise
        raise _fail_on_disk(full, root) from None
    for key, value in sorted(metrics.items()):
        typer.echo(f"  {key} = {value:.6g}")


@app.command(cls=_Command)
def validate(
    params: ParamsOpt = Path("params.yaml"), pipelines: PipelinesOpt = Path("pipelines.yaml")
) -> None:
    """Check params.yaml and pipelines.yaml (with every pipeline's overrides applied)."""
    with _refused():
        load_params(params)
        specs = load_pipelines(pipelines)
        for pname, spec in specs.pipelines.items():
            try:
                for prof in [None, *specs.profiles]:
                    cfg = load_params(params, spec.overrides, profile=profile_overrides(specs, prof))
                    expand_trials(cfg, spec.trials, str(pipelines))
            except ConfigError as err:
                raise ConfigError(f"pipeline {pname}: {err}") from None
    typer.echo(f"ok: {params} and {pipelines} ({', '.join(specs.pipelines)})")


@app.command(cls=_Command)
def deploy(
    pipeline: Annotated[
        list[str] | None, typer.Argument(help="Pipelines to serve (default: all).", metavar="PIPELINE...")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    pipelines: PipelinesOpt = Path("pipelines.yaml"),
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="A profile from pipelines.yaml; deployments named PIPELINE-PROFILE.",
            metavar="NAME",
        ),
    ] = None,
) -> None:
    """Serve pipelines as Prefect deployments on their schedules (blocks until stopped).

    A run reads params.yaml and pipelines.yaml when it starts: edit them, no redeploy.  Pipelines
    with a ``work_pool`` are registered to that pool instead; its workers clone the project from
    its git remote ``origin`` at each run.
    """
    with _refused():
        specs = load_pipelines(pipelines)
        names = [pipeline_name(specs, p) for p in (pipeline or list(specs.pipelines))]
        overlay = profile_overrides(specs, profile)
        configs = {n: load_params(params, specs.pipelines[n].overrides, profile=overlay) for n in names}
        for n in names:
            expand_trials(configs[n], specs.pipelines[n].trials, str(pipelines))
    _setup_logging()
    from flows.deploy import serve_pipelines

    with _refused():  # e.g. a work pool that does not exist
        serve_pipelines(
            {n: specs.pipelines[n] for n in names}, Path.cwd(), profile, (str(params), str(pipelines))
        )


ModelOpt = Annotated[
    str,
    typer.Argument(
        help="A registered model, e.g. stream.edge-identity (`<pipeline>.edge-<domain>`, `<pipeline>.fm`).",
        metavar="MODEL",
    ),
]
ReasonOpt = Annotated[
    str, typer.Option("--reason", help="Why: recorded on the model versions.", metavar="TEXT")
]


def _registry_client(params: Path) -> Any:
    with _refused():
        cfg = load_params(params)
    _check_tracking(cfg, Path.cwd())
    from ecogen.tracking.runs import tracking_client

    return tracking_client(cfg, Path.cwd())[0]


@app.command(cls=_Command)
def promote(
    model: ModelOpt,
    version: Annotated[int, typer.Argument(help="The version to serve.", metavar="VERSION", min=1)],
    reason: ReasonOpt,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Serve VERSION of MODEL: move its `champion` alias there by hand, the reason recorded."""
    client = _registry_client(params)
    from ecogen.tracking.registry import RegistryError
    from ecogen.tracking.registry import promote as set_champion

    with _refused(RegistryError):
        set_champion(client, model, version, f"by hand: {reason}")
    typer.echo(f"{model}: champion is version {version}")


@app.command(cls=_Command)
def rollback(model: ModelOpt, reason: ReasonOpt, params: ParamsOpt = Path("params.yaml")) -> None:
    """Serve the version MODEL served before its champion: the `champion` alias moved back one."""
    client = _registry_client(params)
    from ecogen.tracking.registry import RegistryError
    from ecogen.tracking.registry import rollback as roll_back

    with _refused(RegistryError):
        back = roll_back(client, model, f"by hand: {reason}")
    typer.echo(f"{model}: champion is version {back} again")


ReportOutOpt = Annotated[
    Path, typer.Option("--out", help="Folder for report.md and its CSV, JSON, PNG.", metavar="DIR")
]
ReportPipelineOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--pipeline",
        help="Pipeline to report (repeatable; default: table3, baselines, hfsl-study, faults and cycles; "
        "stream: the stream experiment).",
        metavar="NAME",
    ),
]


@app.command(cls=_Command)
def report(
    params: ParamsOpt = Path("params.yaml"),
    out: ReportOutOpt = Path("reports"),
    pipeline: ReportPipelineOpt = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Only runs made with this profile ('none': as written).", metavar="NAME"
        ),
    ] = None,
    pipelines: PipelinesOpt = Path("pipelines.yaml"),
) -> None:
    """Compare the latest experiment runs from MLflow alone; log the report as an MLflow run."""
    with _refused():
        cfg = load_params(params)
        if profile not in (None, NO_PROFILE):
            profile_overrides(load_pipelines(pipelines), profile)  # an unknown name is an error
    _setup_run(cfg, Path.cwd())
    from ecogen.reporting.tables import section
    from ecogen.tracking.report import DEFAULT_PIPELINES, build_report

    path = build_report(cfg, Path.cwd(), out, tuple(pipeline or DEFAULT_PIPELINES), profile)
    typer.echo(f"report: {path}")
    typer.echo(section(path.read_text(), "Targets"))


@app.command(cls=_Command)
def serve(
    pipeline: Annotated[
        str | None,
        typer.Argument(
            help="Whose finished run's model (default: pipelines.yaml's `default`).", metavar="PIPELINE"
        ),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="The edge to serve (default: the first).", metavar="DOMAIN")
    ] = None,
    capacity: Annotated[int, typer.Option(help="Cached answers (LRU); 0: no cache.", metavar="N")] = 1000,
    near: Annotated[
        float | None, typer.Option(help="Also serve near duplicates: FM-feature cosine ≥ COS.", metavar="COS")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", metavar="PORT")] = 8000,
    profile: ProfileOpt = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="A freshly initialised ViT instead of a run's (smoke tests).")
    ] = False,
) -> None:
    """Serve a run's split inference over HTTP with an edge cache (docs/edge-cache.md)."""
    from ecogen.serving.serve import build_service, run_server

    with _refused(ValueError), _refused(FileNotFoundError):
        service = build_service(Path.cwd(), pipeline, domain, profile, capacity, near, fresh)
    typer.echo(f"serving on http://{host}:{port} (POST /predict, GET /stats, GET /health)")
    run_server(service, host, port)


if __name__ == "__main__":
    app()
