"""`ecogen report`: the comparison report of the experiment pipelines, built from MLflow alone.

For each pipeline name the latest usable pipeline run is taken (FINISHED, or FAILED with at least
one finished trial), and only the ``hfsl`` trial runs nested directly under it.  Their metrics and
accuracy histories become :class:`~ecogen.reporting.Trial` records for the pure
:mod:`ecogen.reporting` modules; the resulting folder (``report.md``, CSV, JSON, PNG) is logged as
the artifacts of a new ``report`` run in the same experiment.  Runs are addressed by id through
``MlflowClient``, never through the fluent active-run stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Run

from ecogen.config.params import Params
from ecogen.reporting import figures, tables
from ecogen.reporting.summary import FULL_MODEL_BYTES, START, RowSummary, Trial, aggregate
from ecogen.reporting.targets import TargetCheck, check_targets
from ecogen.tracking.runs import KIND, PIPELINE, REPLICATE, ROW, STAGE, experiment_id, log_tags
from ecogen.tracking.uri import use_tracking_uri

DEFAULT_PIPELINES = ("table3", "baselines")
TRIAL_STAGE = "hfsl"  # the stage every (row, replicate) reruns
ACCURACY_HISTORY = "mean_accuracy"  # step r = after round r
REPORT_KIND = "report"
SOURCES = "ecogen.report.sources"  # comma-separated pipeline run ids
USABLE = ("FINISHED", "FAILED")


@dataclass(frozen=True)
class PipelineTrials:
    source: tables.PipelineSource
    rows: dict[str, RowSummary] | None  # None: the pipeline never ran


def _search(client: MlflowClient, exp_id: str, query: str, order_by: list[str] | None = None) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs([exp_id], query, max_results=1000, order_by=order_by, page_token=token)
        runs.extend(page)
        if not (token := page.token):
            return runs


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def trial_runs(client: MlflowClient, exp_id: str, parent_id: str) -> list[Run]:
    """The ``hfsl`` stage runs directly under ``parent_id`` that belong to an experiment row."""
    query = (
        f"tags.mlflow.parentRunId = {_quote(parent_id)} AND tags.`{KIND}` = 'stage' "
        f"AND tags.`{STAGE}` = {_quote(TRIAL_STAGE)}"
    )
    return [r for r in _search(client, exp_id, query) if ROW in r.data.tags]


def latest_pipeline_run(client: MlflowClient, exp_id: str, pipeline: str) -> tuple[Run, list[Run]] | None:
    """Newest pipeline run that FINISHED, or FAILED after some trials finished; with its trial runs."""
    query = f"tags.`{KIND}` = 'pipeline' AND tags.`{PIPELINE}` = {_quote(pipeline)}"
    for run in _search(client, exp_id, query, order_by=["attributes.start_time DESC"]):
        if run.info.status not in USABLE:
            continue
        trials = trial_runs(client, exp_id, run.info.run_id)
        if run.info.status == "FINISHED" or any(t.info.status == "FINISHED" for t in trials):
            return run, trials
    return None


def to_trial(client: MlflowClient, run: Run) -> Trial:
    """Scalars, params and the accuracy curve of one trial run (round 0 = ``mean_accuracy_start``).

    The last round's accuracy is logged twice (history and final scalar) at the same step, so the
    history is deduplicated by step.
    """
    metrics = dict(run.data.metrics)
    history = sorted(client.get_metric_history(run.info.run_id, ACCURACY_HISTORY), key=lambda m: m.timestamp)
    curve = {int(m.step): float(m.value) for m in history}
    if START in metrics:
        curve.setdefault(0, metrics[START])
    try:
        replicate = int(run.data.tags.get(REPLICATE, "0"))
    except ValueError:
        replicate = 0
    return Trial(
        row=run.data.tags[ROW],
        replicate=replicate,
        metrics=metrics,
        params=dict(run.data.params),
        accuracy=curve,
    )


def _latest_per_trial(runs: list[Run]) -> list[Run]:
    """One run per (row, replicate), the newest finished one: a trial rerun replaces the old one."""
    latest: dict[tuple[str, str], Run] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        if run.info.status == "FINISHED":
            latest[(run.data.tags[ROW], run.data.tags.get(REPLICATE, "0"))] = run
    return list(latest.values())


def load_pipeline(client: MlflowClient, exp_id: str, pipeline: str) -> PipelineTrials:
    """The finished trials of ``pipeline``'s latest usable run, aggregated per row."""
    found = latest_pipeline_run(client, exp_id, pipeline)
    if found is None:
        return PipelineTrials(tables.PipelineSource(pipeline), None)
    run, runs = found
    trials = [to_trial(client, r) for r in _latest_per_trial(runs)]
    rows = aggregate(trials)
    started = run.info.start_time
    source = tables.PipelineSource(
        pipeline=pipeline,
        run_id=run.info.run_id,
        status=run.info.status,
        started=datetime.fromtimestamp(started / 1000, tz=timezone.utc) if started else None,
        trials=len(trials),
        skipped=len(runs) - len(trials),
        params={**(trials[0].params if trials else {}), **run.data.params},
        replicates=tuple(s.replicates for s in rows.values()),
        model_bytes=next((m for s in rows.values() if (m := s.mean(FULL_MODEL_BYTES)) is not None), None),
    )
    return PipelineTrials(source, rows)


def render(
    loaded: Mapping[str, PipelineTrials], experiment: str, out_dir: Path, report_run: str | None = None
) -> tuple[Path, list[TargetCheck]]:
    """Write report.md, the CSV/JSON files and the figures under ``out_dir``.

    Returns the path of report.md and the target checks it states.
    """
    rows = {name: p.rows for name, p in loaded.items()}
    table3, baselines = rows.get("table3"), rows.get("baselines")
    checks = check_targets(table3, baselines)
    generated = datetime.now(timezone.utc)
    parts = [tables.header_markdown(generated, experiment, [p.source for p in loaded.values()])]
    if report_run:
        parts.append(f"Logged as MLflow run `{report_run}` (`{SOURCES}` names the runs above).")
    for name, pipeline_rows in rows.items():
        if name == "table3":
            parts.append(tables.table3_markdown(pipeline_rows))
        else:
            parts.append(tables.baselines_markdown(pipeline_rows, pipeline=name))
    parts.append(tables.targets_markdown(checks))

    out_dir.mkdir(parents=True, exist_ok=True)
    tables.accuracy_csv(baselines, out_dir / "accuracy_per_round.csv")
    tables.table3_csv(table3, out_dir / "table3.csv")
    tables.bytes_csv(baselines, out_dir / "bytes.csv")
    tables.report_json(rows, checks, out_dir / "report.json")
    figures.write_figures(table3, baselines, out_dir)
    path = out_dir / "report.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path, checks


def build_report(
    params: Params, project_root: Path, out_dir: Path, pipelines: Sequence[str] = DEFAULT_PIPELINES
) -> Path:
    """Build the report from the tracking store of ``params.tracking``; log it as a ``report`` run.

    Missing pipelines and rows are reported as "not run".  Returns the path of ``report.md``.
    """
    uri = use_tracking_uri(params.tracking, project_root)
    client = MlflowClient(uri)
    experiment = params.tracking.experiment
    exp_id = experiment_id(client, experiment, uri, project_root)
    loaded = {name: load_pipeline(client, exp_id, name) for name in dict.fromkeys(pipelines)}
    sources = [p.source.run_id for p in loaded.values() if p.source.run_id]
    run_id = client.create_run(
        exp_id, run_name="report", tags={KIND: REPORT_KIND, SOURCES: ",".join(sources)}
    ).info.run_id
    try:
        log_tags(
            client, run_id, {f"{SOURCES}.{n}": p.source.run_id for n, p in loaded.items() if p.source.run_id}
        )
        path, checks = render(loaded, experiment, out_dir, report_run=run_id)
        _log_target_metrics(client, run_id, checks)
        client.log_artifacts(run_id, str(out_dir))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return path


def _log_target_metrics(client: MlflowClient, run_id: str, checks: Sequence[TargetCheck]) -> None:
    """``target.<key>`` = 1 (PASS) / 0 (MISS), so report runs can be compared in the MLflow UI."""
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    metrics = [
        Metric(f"target.{c.key}", 1.0 if c.status == "PASS" else 0.0, now, 0)
        for c in checks
        if c.status != "not run"
    ]
    if metrics:
        client.log_batch(run_id, metrics=metrics)
