"""``log_result``: a :class:`StageResult` into an MLflow run, children as nested runs.

Models are logged with ``mlflow.pytorch.log_model`` in the ``pickle`` serialization format:

* MLflow 3's default, ``pt2`` (``torch.export``), fails on every peft-wrapped model: ``PeftModel``
  has a ``forward(*args, **kwargs)`` signature that export cannot match to the input example.
  The plain ViT exports fine, but one format for all models is easier to load back.
* ``pickle`` loads back as the real class (``ViT`` with its split segments, ``PeftModel`` with
  its adapters), not a flat ``GraphModule``, and logs in ~0.1 s instead of ~2 s.
* The price: unpickling runs code, so load only models from a tracking store you trust, and
  ``ecogen`` must be importable where a model is loaded.  ``serialization_format="pt2"`` remains
  available (a peft model is then exported through its base model, adapters injected).

The LoggedModel is created explicitly in the run's experiment and passed to ``log_model`` by id,
with ``run_id=``: no fluent active run is involved, so edges may log from parallel threads.

``pip_requirements`` is given explicitly: inferring it takes 8–10 s per model and would pin the
local ``torch==…+cpu`` build label.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Literal

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.utils.validation import MAX_METRICS_PER_BATCH

from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.tracking.runs import DATA_VERSION, EDGE, finish_run, log_params, start_child_run

MODEL_PIP_REQUIREMENTS = ["torch", "peft"]
SerializationFormat = Literal["pickle", "pt2"]

# log_model resolves state that is process-wide in MLflow (tracking URI, last logged model id);
# edges logging in parallel threads take turns.
_MODEL_LOCK = threading.Lock()


def log_result(
    run_id: str,
    result: StageResult,
    data_version: str | None,
    serialization_format: SerializationFormat = "pickle",
    logged: Collection[str] = (),
    existing: Mapping[str, tuple[str, Collection[str]]] | None = None,
) -> list[str]:
    """Log metrics, per-step history (step = index + 1), params, artifact files and models of
    ``result`` into ``run_id``; each child becomes a nested run (``ecogen.kind=edge``) logged the
    same way.  Returns the ids of all runs created below ``run_id``, depth first.

    ``logged``: series of ``result.history`` already logged into ``run_id`` while the stage ran
    (:mod:`ecogen.tracking.live`); they are not logged twice.  ``existing``: child name → (run id,
    series logged live) of children whose runs were made while the stage ran; they are logged
    into those runs instead of new ones.

    The process's MLflow tracking URI must already point at the store that holds ``run_id`` (set
    by ``start_pipeline_run`` / ``track_stage``).
    """
    client = MlflowClient()
    if data_version:
        client.set_tag(run_id, DATA_VERSION, data_version)
    _log_metrics(client, run_id, result, logged)
    if result.params:
        log_params(client, run_id, _without_clashes(client, run_id, result.params))
    for path in result.artifacts:
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=path.name)
        else:
            client.log_artifact(run_id, str(path))
    for name, model in result.models.items():
        log_model(run_id, name, model, data_version, serialization_format)

    created: list[str] = []
    for child in result.children:
        if existing and child.name in existing:
            child_id, child_logged = existing[child.name]
        else:
            child_id = start_child_run(run_id, child.name, "edge", data_version, {EDGE: child.name})
            child_logged = ()
        try:
            below = log_result(child_id, child, data_version, serialization_format, logged=child_logged)
            created += [child_id, *below]
        except BaseException:
            finish_run(child_id, "FAILED")
            raise
        finish_run(child_id, "FINISHED")
    return created


def log_model(
    run_id: str,
    name: str,
    model: ModelArtifact,
    data_version: str | None,
    serialization_format: SerializationFormat = "pickle",
) -> str:
    """Log one model as an MLflow logged model of ``run_id``; returns its ``models:/`` URI.

    The LoggedModel is created here, in the run's experiment: left to ``log_model``, it would go
    to the fluent "active" experiment (Default, ``0``) whenever no fluent run is active.
    """
    client = MlflowClient()
    run = client.get_run(run_id)
    logged = client.create_logged_model(
        experiment_id=run.info.experiment_id,
        name=name,
        source_run_id=run_id,
        tags={DATA_VERSION: data_version} if data_version else None,
        params=run.data.params,  # as log_model does itself: the run's params describe the model
    )
    module = model.module
    get_base_model = getattr(module, "get_base_model", None)  # a peft.PeftModel
    if serialization_format == "pt2" and callable(get_base_model):
        # torch.export cannot trace PeftModel.forward(*args, **kwargs); the base model with the
        # adapters injected computes the same function.
        module = get_base_model()
    import mlflow.pytorch  # here: it imports Lightning (for autologging), 4 s `ecogen stage prepare` skips

    with _MODEL_LOCK:
        info = mlflow.pytorch.log_model(
            module,
            name=name,
            model_id=logged.model_id,
            run_id=run_id,  # links the model as an output of the run; no fluent run needed
            input_example=model.input_example,
            extra_files=[str(p) for p in model.extra_files] or None,
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            serialization_format=serialization_format,
        )
    return info.model_uri


def _log_metrics(client: MlflowClient, run_id: str, result: StageResult, logged: Collection[str]) -> None:
    """History step i is epoch/round i (from 1), except the series in ``logged``.  A final scalar
    that also has a history is logged at the last step, 1 ms later, so MLflow shows it as the
    metric's latest value — unless it is that last value already."""
    now = int(time.time() * 1000)
    metrics = []
    for key, series in result.history.items():
        if key not in logged:
            metrics += [Metric(key, float(value), now, step) for step, value in enumerate(series, start=1)]
    for key, value in result.metrics.items():
        series = result.history.get(key, [])
        if series and float(series[-1]) == float(value):
            continue
        metrics.append(Metric(key, float(value), now + 1, len(series)))
    for batch in _chunks(metrics, MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=batch)


def _without_clashes(
    client: MlflowClient, run_id: str, params: dict[str, str | int | float]
) -> dict[str, str | int | float]:
    """MLflow params are write-once: a key the run already holds (e.g. from the config) with a
    different value is logged as ``result.<key>``; with the same value it is skipped."""
    existing = client.get_run(run_id).data.params
    out: dict[str, str | int | float] = {}
    for key, value in params.items():
        if key not in existing:
            out[key] = value
        elif existing[key] != str(value):
            out[f"result.{key}"] = value
    return out


def _chunks(items: list[Metric], size: int) -> Iterable[list[Metric]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
