"""What a pipeline's parent run carries for the MLflow UI's runs table (where it came from:
:mod:`ecogen.tracking.source`): its data as a logged dataset input, and headline metrics
(accuracy per stage, bytes per round, total time, energy and emissions) to compare runs by, and a
saved view of the experiment's runs table that shows them as columns."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.validation import MAX_EXPERIMENT_TAG_VAL_LENGTH

from ecogen.stages import hfsl_metrics
from ecogen.stages.metric import COST
from ecogen.tracking.runs import PIPELINE

# summed over the pipeline's stage runs
TOTALS = {m.name: f"total_{m.name}" for m in COST}
# from the stages' own metrics (``stage.metric`` or ``trial.stage.metric``); a stream run's too:
# what is served after its gate, and per edge the version registered and whether it was promoted
# (gate.<domain>.version / .promoted)
HEADLINE = (*(m.name for m in hfsl_metrics.HEADLINE), "mean_served_newest", "version", "promoted")

# The MLflow UI's runs table shows only Source, Models and Dataset until a user ticks columns,
# and keeps that choice in the browser; an experiment's saved views (the "Views" menu; a link
# opens one with ``viewStateShareKey=<id>``) are experiment tags under this prefix.
SAVED_VIEW = "mlflow.sharedViewState."
# MLflow 3.17's UI opens an experiment in the view of its GenAI / Model training switch (the link's
# ``workflowType``, else the browser's last choice, GenAI at first), whatever the experiment's kind.
TRAINING_VIEW = "workflowType=machine_learning"


def log_dataset(run_id: str, version: str, folder: Path, pipeline: str) -> None:
    """The prepared data as the run's dataset input: DVC's md5 is its digest."""
    dataset = Dataset(
        name=f"{pipeline}-data",
        digest=version[:36],
        source_type="local",
        source=str(folder),
        schema=None,
        profile=None,
    )
    MlflowClient().log_inputs(
        run_id, datasets=[DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])]
    )


def log_headline(run_id: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """Headline metrics on the parent run: every stage's (and trial's) accuracy and bytes per round
    from ``metrics`` (``stage.metric`` → value, as the flow collects them), and the totals of the
    stage runs under it; the pipeline's saved view of the runs table shows them (see
    :func:`save_headline_view`).  Returns what was logged."""
    client = MlflowClient()
    parent = client.get_run(run_id)
    query = f"tags.`mlflow.parentRunId` = '{run_id}'"
    children = client.search_runs([parent.info.experiment_id], query, max_results=5000)
    out = {k: float(v) for k, v in metrics.items() if k.rsplit(".", 1)[-1] in HEADLINE}
    for source, total in TOTALS.items():
        if values := [r.data.metrics[source] for r in children if source in r.data.metrics]:
            out[total] = float(sum(values))
    stamp = parent.info.start_time or 0
    batch = [Metric(k, v, stamp, 0) for k, v in sorted(out.items())]
    for i in range(0, len(batch), 500):
        client.log_batch(run_id, metrics=batch[i : i + 500])
    if out and (pipeline := parent.data.tags.get(PIPELINE)):
        save_headline_view(parent.info.experiment_id, pipeline, out)
    return out


def view_id(pipeline: str) -> str:
    return f"ecogen-{pipeline}"


def runs_table_page(experiment_id: str, pipeline: str) -> str:
    """The UI's page (after its ``#``) of the experiment's training runs in ``pipeline``'s saved view."""
    return f"#/experiments/{experiment_id}/runs?{TRAINING_VIEW}&viewStateShareKey={view_id(pipeline)}"


def save_headline_view(experiment_id: str, pipeline: str, keys: Iterable[str]) -> str:
    """The saved view "<pipeline>: headline metrics" of the experiment's runs table, whose columns are
    the headline metrics ``keys``; returns its id."""
    columns = [f"metrics.`{k}`" for k in sorted(keys)]
    name, created = f"{pipeline}: headline metrics", int(time.time() * 1000)
    while True:  # an experiment tag holds at most 20,000 characters: the first columns then
        state = json.dumps({"selectedColumns": columns})
        value = json.dumps({"name": name, "createdAt": created, "state": state})
        if len(value) <= MAX_EXPERIMENT_TAG_VAL_LENGTH or not columns:
            break
        columns = columns[: len(columns) * 3 // 4]
    MlflowClient().set_experiment_tag(experiment_id, SAVED_VIEW + view_id(pipeline), value)
    return view_id(pipeline)
