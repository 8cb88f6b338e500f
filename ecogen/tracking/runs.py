"""The run tree in MLflow: pipeline run → stage runs → edge runs, all through ``MlflowClient``.

Runs are addressed by id, never through MLflow's fluent active-run stack, because edges log from
parallel threads (the fluent API is not thread-safe).  Every run carries ``ecogen.kind`` and the
data version it used (``ecogen.data_version``; ``"unknown"`` until :func:`set_data_version` is
called, e.g. on the prepare stage, whose version exists only once it has run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

from ecogen.config.params import Params
from ecogen.tracking.source import source_tags
from ecogen.tracking.uri import artifact_location, redact_uri, use_tracking_uri

KIND = "ecogen.kind"  # pipeline | stage | edge
PIPELINE = "ecogen.pipeline"
STAGE = "ecogen.stage"
EDGE = "ecogen.edge"
ROW = "ecogen.row"  # an experiment's row (a method, a cluster count, ...)
REPLICATE = "ecogen.replicate"
TRIAL = "ecogen.trial"  # "<row>-r<replicate>", "<row>-fm<draw>-r<replicate>" on FM draw > 0
FM_DRAW = "ecogen.fm_draw"  # the FM a stage run starts from, when it is not draw 0 (pretrain.draw)
CYCLE = "ecogen.cycle"  # k of the deliver → finetune → hfsl → relay loop
WORKER = "ecogen.worker"  # stage runs: the Prefect worker that ran it, or LOCAL_WORKER
LOCAL_WORKER = "parent"  # run in the parent flow's process
HOST = "ecogen.host"  # stage runs: the machine's host name
PROFILE = "ecogen.profile"  # pipeline runs: the pipelines.yaml profile applied, or NO_PROFILE
DATA_VERSION = "ecogen.data_version"
DATA_VERSION_PARAM = "data_version"
UNKNOWN_VERSION = "unknown"


def flatten_params(params: Params) -> dict[str, str]:
    """``{"hfsl.rounds": "5", "data.domains": '["identity", "rotate90"]', ...}``.

    Strings stay as they are; everything else (numbers, booleans, null, lists) is JSON, so the
    value can be parsed back unambiguously.  ``tracking.uri`` is logged without its credentials.
    """

    def walk(prefix: str, node: Any) -> Iterable[tuple[str, str]]:
        if isinstance(node, Mapping):
            for key, value in node.items():
                yield from walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            yield prefix, node if isinstance(node, str) else json.dumps(node)

    flat = dict(walk("", params.model_dump(mode="json")))
    if flat.get("tracking.uri") not in (None, "null"):  # never a password into MLflow
        flat["tracking.uri"] = redact_uri(flat["tracking.uri"])
    return flat


def log_params(client: MlflowClient, run_id: str, values: Mapping[str, object]) -> None:
    items = [Param(key, str(value)) for key, value in values.items()]
    for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=items[i : i + MAX_PARAMS_TAGS_PER_BATCH])


def log_metrics(client: MlflowClient, run_id: str, metrics: list[Metric]) -> None:
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS_PER_BATCH])


# what a stage run measures of itself (track_stage): a copy keeps the source's as source_<key>
OWN_MEASUREMENTS = ("duration_s", "energy_", "emissions_", "power_")
SOURCE = "source_"


def copy_results(source_run_id: str, target_run_id: str, reused_from: str) -> None:
    """A reused stage's results into its new run: every metric of the run that made them, each with
    its whole history (steps and timestamps: the per-round curves the report reads); what that run
    measured of itself (time, energy) as ``source_<key>``, since the new run measures its own (the
    copy); and where they came from (param ``reused_from``)."""
    import time

    client = MlflowClient()
    metrics = client.get_run(source_run_id).data.metrics
    keys = [k for k in metrics if not k.startswith(OWN_MEASUREMENTS)]
    history = client.get_metric_history
    points = [Metric(k, m.value, m.timestamp, m.step) for k in keys for m in history(source_run_id, k)]
    now = int(time.time() * 1000)
    points += [Metric(SOURCE + k, v, now, 0) for k, v in metrics.items() if k.startswith(OWN_MEASUREMENTS)]
    log_metrics(client, target_run_id, points)
    log_params(client, target_run_id, {"reused_from": reused_from})


def log_tags(client: MlflowClient, run_id: str, values: Mapping[str, object]) -> None:
    items = [RunTag(key, str(value)) for key, value in values.items()]
    for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, tags=items[i : i + MAX_PARAMS_TAGS_PER_BATCH])


# The MLflow UI opened an experiment in its model-training view (runs with metric columns, logged
# models) rather than its GenAI view (traces, "evaluation runs") when the experiment said so; 3.17
# follows its own GenAI / Model training switch instead (see headline.TRAINING_VIEW).
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def experiment_id(client: MlflowClient, name: str, uri: str, project_root: Path) -> str:
    """Get or create the experiment, marked as a model-training experiment; tolerates another
    process creating it at the same time."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location(uri, project_root, name),
                tags={EXPERIMENT_KIND: MODEL_TRAINING},
            )
        except MlflowException:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if EXPERIMENT_KIND not in exp.tags:  # made before EcoGen said what kind it is
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return exp.experiment_id


def tracking_client(params: Params, project_root: Path) -> tuple[MlflowClient, str]:
    """A client of ``params.tracking``'s store (also made MLflow's current URI) and the experiment id."""
    uri = use_tracking_uri(params.tracking, project_root)
    client = MlflowClient(uri)
    return client, experiment_id(client, params.tracking.experiment, uri, project_root)


def quote(value: str) -> str:
    """A string literal for an MLflow search filter."""
    return "'" + value.replace("'", "\\'") + "'"


def search_all(client: MlflowClient, exp_id: str, query: str, order_by: list[str] | None = None) -> list[Run]:
    """Every run matching ``query``, page by page."""
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs([exp_id], query, max_results=1000, order_by=order_by, page_token=token)
        runs.extend(page)
        if not (token := page.token):
            return runs


def pipeline_runs(client: MlflowClient, exp_id: str, pipeline: str) -> list[Run]:
    """The runs of ``pipeline`` (``ecogen run`` parents), newest first."""
    query = f"tags.`{KIND}` = 'pipeline' AND tags.`{PIPELINE}` = {quote(pipeline)}"
    return search_all(client, exp_id, query, order_by=["attributes.start_time DESC"])


def run_profile(run: Run) -> str | None:
    """The profile a pipeline run was made with (``"none"``: as written; None: logged before the tag)."""
    return run.data.tags.get(PROFILE)


def start_pipeline_run(
    params: Params,
    pipeline: str,
    project_root: Path,
    tags: Mapping[str, str] | None = None,
    source: str | None = None,
) -> str:
    """Create the parent run of one pipeline execution, with every parameter; returns its id.
    ``source``: what started it, as MLflow shows it (default ``ecogen run PIPELINE``)."""
    client, exp_id = tracking_client(params, project_root)
    flat = flatten_params(params)
    run_tags = {
        KIND: "pipeline",
        PIPELINE: pipeline,
        DATA_VERSION: UNKNOWN_VERSION,
        **source_tags(project_root, pipeline, flat, source),
        **(tags or {}),
    }
    run = client.create_run(exp_id, run_name=pipeline, tags=run_tags)
    log_params(client, run.info.run_id, flat)
    resolved = params.model_dump(mode="json")  # the whole configuration, as one file to read or reuse
    if resolved["tracking"].get("uri"):
        resolved["tracking"]["uri"] = redact_uri(resolved["tracking"]["uri"])
    client.log_text(run.info.run_id, yaml.safe_dump(resolved, sort_keys=False), "params.yaml")
    return run.info.run_id


def start_child_run(
    parent_run_id: str, name: str, kind: str, data_version: str | None, tags: Mapping[str, str] | None = None
) -> str:
    """A run nested under ``parent_run_id`` in the parent's experiment.

    With ``data_version=None`` the parent's version is inherited; the parent's pipeline tag is
    copied so that ``tags.ecogen.pipeline = 'x'`` finds the whole tree.
    """
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    version = data_version or parent.data.tags.get(DATA_VERSION, UNKNOWN_VERSION)
    run_tags = {MLFLOW_PARENT_RUN_ID: parent_run_id, KIND: kind, DATA_VERSION: version}
    if pipeline := parent.data.tags.get(PIPELINE):
        run_tags[PIPELINE] = pipeline
    run_tags.update(tags or {})
    run = client.create_run(parent.info.experiment_id, run_name=name, tags=run_tags)
    if version != UNKNOWN_VERSION:
        log_params(client, run.info.run_id, {DATA_VERSION_PARAM: version})
    return run.info.run_id


def set_data_version(run_id: str, version: str) -> None:
    """Record the DVC data version on a run: a tag (searchable) and a param (shown in compare).

    MLflow params are write-once, so the param is logged only if the run has none yet; the tag
    always follows the latest call.
    """
    client = MlflowClient()
    client.set_tag(run_id, DATA_VERSION, version)
    if DATA_VERSION_PARAM not in client.get_run(run_id).data.params:
        log_params(client, run_id, {DATA_VERSION_PARAM: version})


def finish_run(run_id: str, status: str = "FINISHED") -> None:
    """Terminate a run: ``FINISHED``, ``FAILED`` or ``KILLED``."""
    if status not in ("FINISHED", "FAILED", "KILLED"):
        raise ValueError(f"status must be FINISHED, FAILED or KILLED, got {status!r}")
    MlflowClient().set_terminated(run_id, status)
