"""`ecogen report`: the comparison report of the experiment pipelines, built from MLflow alone.

Each pipeline's latest usable run is read (:func:`latest_pipeline_run`): its ``hfsl`` trial runs
become :class:`~ecogen.reporting.summary.Trial` records for the pure :mod:`ecogen.reporting`
modules, the ``cycles`` pipeline's stage runs one :class:`~ecogen.reporting.cycles.Cycle` per
cycle, and the ``default`` chain's newest hfsl stage run feeds one target (:func:`load_chain`).
Each pipeline run's wall time (end − start; a resumed run's includes the pause) feeds the runtime
target.  The resulting folder (``report.md``, CSV, JSON, PNG) is logged as the artifacts of a new
``report`` run in the same experiment.  Runs are addressed by id through ``MlflowClient``, never
through the fluent active-run stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Run

from ecogen.config.params import Params
from ecogen.reporting import figures, tables
from ecogen.reporting.cycles import BEST_EDGE, CYCLE_STAGES, CYCLES_PIPELINE, Cycle
from ecogen.reporting.edge_cache import CacheRun, edge_cache_checks, edge_cache_markdown
from ecogen.reporting.stream import StreamPoint, stream_checks, stream_csv, stream_markdown
from ecogen.reporting.summary import (
    BASELINES_PIPELINE,
    FAULTS_PIPELINE,
    STUDY_PIPELINE,
    TABLE3_PIPELINE,
    RowSummary,
    Trial,
    aggregate,
)
from ecogen.reporting.targets import TargetCheck, check_targets
from ecogen.stages.hfsl_metrics import END, FULL_MODEL_BYTES, START
from ecogen.tracking.edge_cache_report import load_edge_cache
from ecogen.tracking.runs import (
    CYCLE,
    EDGE,
    FM_DRAW,
    KIND,
    REPLICATE,
    ROW,
    SOURCE,
    STAGE,
    log_tags,
    pipeline_runs,
    quote,
    run_profile,
    search_all,
    tracking_client,
)
from ecogen.tracking.stream_report import STREAM_PIPELINE, load_stream

DEFAULT_PIPELINES = (TABLE3_PIPELINE, BASELINES_PIPELINE, STUDY_PIPELINE, FAULTS_PIPELINE, CYCLES_PIPELINE)
CHAIN_PIPELINE = "default"  # the plain chain (no trials): its hfsl stage run feeds one target
TRIAL_STAGE = "hfsl"  # the stage every (row, replicate) reruns
ACCURACY_HISTORY = END.name  # step r = after round r
REPORT_KIND = "report"
SOURCES = "ecogen.report.sources"  # comma-separated pipeline run ids
USABLE = ("FINISHED", "FAILED")
REDELIVERED_EDGE = "accuracy_redelivered"  # finetune edge runs, from cycle 1 on


@dataclass(frozen=True)
class PipelineTrials:
    source: tables.PipelineSource
    rows: dict[str, RowSummary] | None  # None: the pipeline never ran
    cycles: list[Cycle] | None = None  # the cycles pipeline's records (None: never ran)
    metrics: dict[str, float] | None = None  # a chain's one hfsl stage run's metrics (None: none)


def hfsl_stage_runs(client: MlflowClient, exp_id: str, parent_id: str) -> list[Run]:
    """The ``hfsl`` stage runs directly under ``parent_id``."""
    query = (
        f"tags.mlflow.parentRunId = {quote(parent_id)} AND tags.`{KIND}` = 'stage' "
        f"AND tags.`{STAGE}` = {quote(TRIAL_STAGE)}"
    )
    return search_all(client, exp_id, query)


def trial_runs(client: MlflowClient, exp_id: str, parent_id: str) -> list[Run]:
    """The ``hfsl`` stage runs directly under ``parent_id`` that belong to an experiment row."""
    return [r for r in hfsl_stage_runs(client, exp_id, parent_id) if ROW in r.data.tags]


def _finished(run: Run) -> bool:
    return run.info.status == "FINISHED"


def latest_pipeline_run(
    client: MlflowClient,
    exp_id: str,
    pipeline: str,
    children: Callable[[MlflowClient, str, str], list[Run]] = trial_runs,
    counts: Callable[[Run], bool] = _finished,
    profile: str | None = None,
) -> tuple[Run, list[Run]] | None:
    """Newest pipeline run that FINISHED, or FAILED after some trials finished; with its trial runs.

    ``children`` lists the runs under a pipeline run (default: its trial runs); a FAILED pipeline
    run is used when one of them ``counts`` (default: it finished).  With ``profile`` only runs of
    that pipelines.yaml profile are considered (``"none"``: the pipeline as written).
    """
    for run in pipeline_runs(client, exp_id, pipeline):
        if run.info.status not in USABLE or (profile is not None and run_profile(run) != profile):
            continue
        runs = children(client, exp_id, run.info.run_id)
        if run.info.status == "FINISHED" or any(counts(r) for r in runs):
            return run, runs
    return None


def to_trial(client: MlflowClient, run: Run) -> Trial:
    """Scalars, params and the accuracy curve of one trial run (round 0 = ``mean_accuracy_start``).

    The last round's accuracy is logged twice (history and final scalar) at the same step, so the
    history is deduplicated by step.
    """
    metrics = dict(run.data.metrics)
    for key in [k for k in metrics if k.startswith(SOURCE)]:  # a reused trial costs what making it cost
        metrics[key.removeprefix(SOURCE)] = metrics[key]
    history = sorted(client.get_metric_history(run.info.run_id, ACCURACY_HISTORY), key=lambda m: m.timestamp)
    curve = {int(m.step): float(m.value) for m in history}
    if START.name in metrics:
        curve.setdefault(0, metrics[START.name])
    replicate, draw = (_int_tag(run, tag) for tag in (REPLICATE, FM_DRAW))
    return Trial(
        row=run.data.tags[ROW],
        replicate=replicate,
        draw=draw,
        metrics=metrics,
        params=dict(run.data.params),
        accuracy=curve,
    )


def _int_tag(run: Run, tag: str) -> int:
    try:
        return int(run.data.tags.get(tag, "0"))
    except ValueError:
        return 0


def _latest_per_trial(runs: list[Run]) -> list[Run]:
    """One run per (row, FM draw, replicate), the newest finished one: a trial rerun replaces the
    old one."""
    latest: dict[tuple[str, int, int], Run] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        if run.info.status == "FINISHED":
            latest[(run.data.tags[ROW], _int_tag(run, FM_DRAW), _int_tag(run, REPLICATE))] = run
    return list(latest.values())


def _run_fields(pipeline: str, run: Run) -> dict[str, Any]:
    """What every pipeline source shows of its MLflow run."""
    started, ended = run.info.start_time, run.info.end_time
    return {
        "pipeline": pipeline,
        "run_id": run.info.run_id,
        "profile": run_profile(run),
        "status": run.info.status,
        "started": datetime.fromtimestamp(started / 1000, tz=timezone.utc) if started else None,
        "wall_s": None if not started or not ended else (ended - started) / 1000,  # None until it ended
    }


def load_pipeline(
    client: MlflowClient, exp_id: str, pipeline: str, profile: str | None = None
) -> PipelineTrials:
    """The finished trials of ``pipeline``'s latest usable run (of ``profile``), aggregated per row."""
    found = latest_pipeline_run(client, exp_id, pipeline, profile=profile)
    if found is None:
        return PipelineTrials(tables.PipelineSource(pipeline, profile=profile), None)
    run, runs = found
    trials = [to_trial(client, r) for r in _latest_per_trial(runs)]
    rows = aggregate(trials)
    source = tables.PipelineSource(
        **_run_fields(pipeline, run),
        trials=len(trials),
        skipped=len(runs) - len(trials),
        params={**(trials[0].params if trials else {}), **run.data.params},
        replicates=tuple(s.replicates for s in rows.values()),
        draws=len({t.draw for t in trials}) or 1,
        model_bytes=next((m for s in rows.values() if (m := s.mean(FULL_MODEL_BYTES)) is not None), None),
    )
    return PipelineTrials(source, rows)


def cycle_stage_runs(client: MlflowClient, exp_id: str, parent_id: str) -> list[Run]:
    """The finetune, hfsl and relay stage runs directly under ``parent_id`` that belong to a cycle."""
    query = f"tags.mlflow.parentRunId = {quote(parent_id)} AND tags.`{KIND}` = 'stage'"
    return [
        r
        for r in search_all(client, exp_id, query)
        if CYCLE in r.data.tags and r.data.tags.get(STAGE) in CYCLE_STAGES
    ]


def _finished_relay(run: Run) -> bool:
    return _finished(run) and run.data.tags.get(STAGE) == "relay"


def _cycle(run: Run) -> int | None:
    try:
        return int(run.data.tags[CYCLE])
    except (KeyError, ValueError):
        return None


def edge_metric(client: MlflowClient, exp_id: str, stage_run: Run | None, metric: str) -> dict[str, float]:
    """``{edge: metric}`` over the finished edge runs under ``stage_run`` (the newest per edge)."""
    if stage_run is None:
        return {}
    query = f"tags.mlflow.parentRunId = {quote(stage_run.info.run_id)} AND tags.`{KIND}` = 'edge'"
    out: dict[str, float] = {}
    for run in sorted(search_all(client, exp_id, query), key=lambda r: r.info.start_time or 0):
        if _finished(run) and metric in run.data.metrics:
            out[run.data.tags.get(EDGE, run.info.run_name or run.info.run_id)] = run.data.metrics[metric]
    return out


def to_cycles(client: MlflowClient, exp_id: str, runs: list[Run]) -> list[Cycle]:
    """One record per cycle from the newest finished run of each (cycle, stage): a rerun replaces."""
    latest: dict[int, dict[str, Run]] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        if _finished(run) and (k := _cycle(run)) is not None:
            latest.setdefault(k, {})[run.data.tags[STAGE]] = run
    cycles = []
    for k, stages in sorted(latest.items()):
        relay, finetune, hfsl = (stages.get(s) for s in ("relay", "finetune", "hfsl"))
        cycles.append(
            Cycle(
                k=k,
                relay=dict(relay.data.metrics) if relay else {},
                finetune=dict(finetune.data.metrics) if finetune else {},
                hfsl=dict(hfsl.data.metrics) if hfsl else {},
                best_edge=relay.data.params.get(BEST_EDGE) if relay else None,
                hfsl_edges=edge_metric(client, exp_id, hfsl, END.key),
                redelivered_edges=edge_metric(client, exp_id, finetune, REDELIVERED_EDGE),
            )
        )
    return cycles


def _of_profile_or_as_written(
    client: MlflowClient,
    exp_id: str,
    pipeline: str,
    children: Callable[[MlflowClient, str, str], list[Run]],
    counts: Callable[[Run], bool],
    profile: str | None,
) -> tuple[Run, list[Run]] | None:
    """The default pipeline and `cycles` are sized for a CPU as written: when ``profile`` has no
    run of them, their newest run as written stands in (the report's sources say which it used)."""
    found = latest_pipeline_run(client, exp_id, pipeline, children, counts, profile)
    if found is None and profile not in (None, "none"):
        found = latest_pipeline_run(client, exp_id, pipeline, children, counts, "none")
    return found


def load_cycles(
    client: MlflowClient, exp_id: str, pipeline: str = CYCLES_PIPELINE, profile: str | None = None
) -> PipelineTrials:
    """The cycles of ``pipeline``'s latest usable run (FINISHED, or FAILED after a finished relay)."""
    found = _of_profile_or_as_written(client, exp_id, pipeline, cycle_stage_runs, _finished_relay, profile)
    if found is None:
        return PipelineTrials(tables.PipelineSource(pipeline, profile=profile), None)
    run, runs = found
    cycles = to_cycles(client, exp_id, runs)
    used = sum(bool(c.relay) + bool(c.finetune) + bool(c.hfsl) for c in cycles)
    source = tables.PipelineSource(
        **_run_fields(pipeline, run),
        trials=len(cycles),
        skipped=len(runs) - used,
        params=dict(run.data.params),
        model_bytes=next((m for c in cycles if (m := c.hfsl.get(FULL_MODEL_BYTES.name)) is not None), None),
        unit="cycles",
    )
    return PipelineTrials(source, None, cycles)


def load_chain(
    client: MlflowClient, exp_id: str, pipeline: str = CHAIN_PIPELINE, profile: str | None = None
) -> PipelineTrials:
    """The hfsl stage metrics of ``pipeline``'s newest FINISHED run (of ``profile``): the newest
    finished hfsl stage run under it (a resumed run may hold an earlier attempt too)."""
    found = _of_profile_or_as_written(client, exp_id, pipeline, hfsl_stage_runs, lambda _: False, profile)
    if found is None:
        return PipelineTrials(tables.PipelineSource(pipeline, profile=profile), None)
    run, runs = found
    finished = sorted((r for r in runs if _finished(r)), key=lambda r: r.info.start_time or 0)
    metrics = dict(finished[-1].data.metrics) if finished else None
    source = tables.PipelineSource(
        **_run_fields(pipeline, run),
        trials=len(finished[-1:]),
        skipped=len(runs) - len(finished[-1:]),
        params=dict(run.data.params),
        model_bytes=(metrics or {}).get(FULL_MODEL_BYTES.name),
        unit="hfsl stage run",
    )
    return PipelineTrials(source, None, metrics=metrics)


def render(
    loaded: Mapping[str, PipelineTrials],
    experiment: str,
    out_dir: Path,
    report_run: str | None = None,
    profile: str | None = None,
    chain: PipelineTrials | None = None,
    stream: Sequence[StreamPoint] | None = None,
    edge_cache: tuple[Sequence[CacheRun], CacheRun | None] | None = None,
) -> tuple[Path, list[TargetCheck]]:
    """Write report.md, the CSV/JSON files and the figures under ``out_dir``.

    ``chain``: the default pipeline's hfsl stage (:func:`load_chain`), a source only when found;
    ``stream``: the stream experiment's points (:func:`load_stream`), when it was asked for;
    ``edge_cache``: the edge cache benchmark's runs (:func:`load_edge_cache`).
    Returns the path of report.md and the target checks it states.
    """
    rows = {name: p.rows for name, p in loaded.items() if name != CYCLES_PIPELINE}
    cycles = loaded[CYCLES_PIPELINE].cycles if CYCLES_PIPELINE in loaded else None
    found_chain = chain if chain is not None and chain.source.run_id else None
    checks = check_targets(
        rows.get(TABLE3_PIPELINE),
        rows.get(BASELINES_PIPELINE),
        cycles,
        default=found_chain.metrics if found_chain else None,
        wall_times={name: p.source.wall_s for name, p in loaded.items()},
        faults=rows.get(FAULTS_PIPELINE),
    )
    if stream is not None:
        checks += stream_checks(stream)
    if edge_cache is not None:
        checks += edge_cache_checks(*edge_cache)
    sources = [p.source for p in loaded.values()] + ([found_chain.source] if found_chain else [])
    parts = [tables.header_markdown(datetime.now(timezone.utc), experiment, sources, profile)]
    if report_run:
        parts.append(f"Logged as MLflow run `{report_run}` (`{SOURCES}` names the runs above).")
    if found_chain and found_chain.metrics:
        source = found_chain.source
        parts.append(tables.chain_markdown(found_chain.metrics, source.pipeline, source.run_id or ""))
    parts += _experiment_sections(loaded)
    if stream is not None:
        parts.append(stream_markdown(stream))
    if edge_cache is not None:
        parts.append(edge_cache_markdown(*edge_cache))
    parts.append(tables.targets_markdown(checks))
    _write_files(rows, cycles if CYCLES_PIPELINE in loaded else False, checks, found_chain, stream, out_dir)
    path = out_dir / "report.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path, checks


def _experiment_sections(loaded: Mapping[str, PipelineTrials]) -> list[str]:
    """A section per experiment pipeline that ran; one line naming those that have not."""
    parts, waiting = [], []
    for name, pipeline in loaded.items():
        if (pipeline.cycles if name == CYCLES_PIPELINE else pipeline.rows) is None:
            waiting.append(name)
        elif name == CYCLES_PIPELINE:
            parts.append(tables.cycles_markdown(pipeline.cycles, pipeline=name))
        elif name == TABLE3_PIPELINE:
            parts.append(tables.table3_markdown(pipeline.rows))
        elif name == STUDY_PIPELINE:
            parts.append(tables.study_markdown(pipeline.rows, pipeline=name))
        else:
            parts.append(tables.baselines_markdown(pipeline.rows, pipeline=name))
            if name == BASELINES_PIPELINE:  # Table 2 of our own: energy per method
                parts.append(tables.energy_markdown(pipeline.rows))
    return parts + ([tables.not_run_markdown(waiting)] if waiting else [])


def _write_files(
    rows: Mapping[str, Mapping[str, RowSummary] | None],
    cycles: list[Cycle] | None | bool,
    checks: list[TargetCheck],
    chain: PipelineTrials | None,
    stream: Sequence[StreamPoint] | None,
    out_dir: Path,
) -> None:
    """The report's CSV, JSON and figures beside report.md (``cycles`` False: the cycles
    pipeline was not asked for; None: it has not run)."""
    asked = cycles is not False
    cycles = cycles if isinstance(cycles, list) else None
    table3, baselines = rows.get(TABLE3_PIPELINE), rows.get(BASELINES_PIPELINE)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables.accuracy_csv(baselines, out_dir / "accuracy_per_round.csv")
    tables.table3_csv(table3, out_dir / "table3.csv")
    tables.bytes_csv(baselines, out_dir / "bytes.csv")
    tables.study_csv(rows.get(STUDY_PIPELINE), out_dir / "study.csv")
    tables.cycles_csv(cycles, out_dir / "relay_cycles.csv")
    if stream is not None:
        stream_csv(stream, out_dir / "stream.csv")
    sections: dict[str, Any] = {}
    if asked:
        sections[CYCLES_PIPELINE] = tables.cycles_json(cycles)
    if chain and chain.metrics:
        sections[chain.source.pipeline] = tables.stage_json(chain.metrics)
    tables.report_json(rows, checks, out_dir / "report.json", sections)
    figures.write_figures(table3, baselines, out_dir, cycles)


def build_report(
    params: Params,
    project_root: Path,
    out_dir: Path,
    pipelines: Sequence[str] = DEFAULT_PIPELINES,
    profile: str | None = None,
    chain: str | None = CHAIN_PIPELINE,
) -> Path:
    """Build the report from the tracking store of ``params.tracking``; log it as a ``report`` run.

    ``profile``: only pipeline runs made with that pipelines.yaml profile (``"none"``: as written);
    default: the newest run of each pipeline, whatever its profile.  Missing pipelines and rows are
    reported as "not run".  ``chain``: the pipeline whose hfsl stage the default-chain target reads
    (None: none).  Returns the path of ``report.md``.
    """
    client, exp_id = tracking_client(params, project_root)
    experiment = params.tracking.experiment
    named = [n for n in dict.fromkeys(pipelines) if n not in (chain, STREAM_PIPELINE)]
    loaded = {  # each pipeline's numbers: its cycles for the knowledge-flow loop, its trials otherwise
        name: (load_cycles if name == CYCLES_PIPELINE else load_pipeline)(client, exp_id, name, profile)
        for name in named
    }
    stream = load_stream(client, exp_id, STREAM_PIPELINE, profile) if STREAM_PIPELINE in pipelines else None
    chain_trials = load_chain(client, exp_id, chain, profile) if chain else None
    edge_cache = load_edge_cache(client, exp_id)
    used = [*loaded.values(), *([chain_trials] if chain_trials else [])]
    run_ids = {p.source.pipeline: p.source.run_id for p in used if p.source.run_id}
    run_id = client.create_run(
        exp_id, run_name="report", tags={KIND: REPORT_KIND, SOURCES: ",".join(run_ids.values())}
    ).info.run_id
    try:
        log_tags(client, run_id, {f"{SOURCES}.{n}": rid for n, rid in run_ids.items()})
        path, checks = render(
            loaded,
            experiment,
            out_dir,
            report_run=run_id,
            profile=profile,
            chain=chain_trials,
            stream=stream,
            edge_cache=edge_cache,
        )
        now = int(datetime.now(timezone.utc).timestamp() * 1000)
        targets = [  # 1 (PASS) / 0 (MISS), so report runs can be compared in the MLflow UI
            Metric(f"target.{c.key}", 1.0 if c.status == "PASS" else 0.0, now, 0)
            for c in checks
            if c.status != "not run"
        ]
        if targets:
            client.log_batch(run_id, metrics=targets)
        client.log_artifacts(run_id, str(out_dir))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return path
