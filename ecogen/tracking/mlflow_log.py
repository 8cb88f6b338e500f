"""``log_result``: a :class:`StageResult` into an MLflow run, children as nested runs.

Every model is logged as an MLflow pyfunc that a user can take away: it loads with
``mlflow.pyfunc.load_model`` (or ``mlflow models serve``) where EcoGen is not installed, and takes
raw images as users have them, uint8 0-255 ``(N, C, H, W)``.  A logged model holds:

* ``artifacts/model.pt2``: the module exported with ``torch.export``
  (:func:`ecogen.models.export.export_raw_images`), its preprocessing (``x / 127.5 - 1``)
  included; a peft model is exported with its LoRA merged into the weights.  Classifiers return
  class probabilities, the pre-trained FM (``fm``) pooled features.
* ``image_model.py``: the pyfunc (:mod:`ecogen.tracking.image_model`, numpy, torch and
  mlflow only), logged as "models from code" so no Python object is pickled.
* ``artifacts/<file name>``: each of ``ModelArtifact.extra_files`` (an edge's ``tunable.pt``,
  the FM checkpoint ``fm.pt``): ``mlflow.artifacts.download_artifacts(model_uri)`` returns the
  model's folder, with an edge's tunable modules in ``artifacts/tunable.pt``.
* a signature that says so: input uint8 ``(-1, C, H, W)``, output float32 ``probabilities``
  ``(-1, classes)`` or ``features`` ``(-1, dim)``, with an input example of raw images.

Models were pickled with ``mlflow.pytorch`` before (issue 22, item 4): loading them needed
``ecogen`` importable and trust in the store (unpickling runs code), and they took floats in
[-1, 1] without saying so (raw images scored 0.115).  Exporting is slower to log: a tiny ViT
took about 0.6 s a model against 0.06 s pickled (2 cores; about half is ``torch.export``, a
quarter MLflow loading the model back to check its serving example), and a process's first
export takes ~3 s more.  ``torch.jit.trace`` would be a little faster, but torch deprecates
``trace``, ``save`` and ``load`` in favour of ``torch.export``.  MLflow checks input against the
signature's rank, so ``(N, H, W)`` images need their channel axis (``x[:, None]``) through
``predict``; the python model itself (``unwrap_python_model().predict``) adds it.

The LoggedModel is created explicitly in the run's experiment and passed to ``Model.log`` by id,
with ``run_id=`` (``mlflow.pyfunc.log_model`` takes none; it calls ``Model.log``): no fluent
active run is involved, so edges may log from parallel threads.

``pip_requirements`` is given explicitly (``torch>=`` the running minor version, which an
exported program needs, and numpy): inferring it takes 8–10 s per model and would pin the local
``torch==…+cpu`` build label.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric

from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.tracking.runs import DATA_VERSION, EDGE, finish_run, log_metrics, log_params, start_child_run

# an older torch cannot be counted on to read a program this one exported
MODEL_PIP_REQUIREMENTS = ["torch>=" + ".".join(torch.__version__.split(".")[:2]), "numpy"]
# the pyfunc's code, logged into every model; it reads the exported program under the key PROGRAM
IMAGE_MODEL_CODE = Path(__file__).with_name("image_model.py")
PROGRAM = "program"  # the same key as in image_model.py, which ecogen never imports (see there)

# Model.log resolves state that is process-wide in MLflow (tracking URI, last logged model id), and
# torch.export traces through process-wide state too; edges logging in parallel threads take turns.
_MODEL_LOCK = threading.Lock()


def log_result(
    run_id: str,
    result: StageResult,
    data_version: str | None,
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
        log_model(run_id, name, model, data_version)

    created: list[str] = []
    for child in result.children:
        if existing and child.name in existing:
            child_id, child_logged = existing[child.name]
        else:
            child_id = start_child_run(run_id, child.name, "edge", data_version, {EDGE: child.name})
            child_logged = ()
        try:
            below = log_result(child_id, child, data_version, logged=child_logged)
            created += [child_id, *below]
        except BaseException:
            finish_run(child_id, "FAILED")
            raise
        finish_run(child_id, "FINISHED")
    return created


def log_model(run_id: str, name: str, model: ModelArtifact, data_version: str | None = None) -> str:
    """Log one model as an MLflow logged model of ``run_id``, in the format the module docstring
    describes; returns its ``models:/`` URI (to register, or to load with ``mlflow.pyfunc``).

    The LoggedModel is created here, in the run's experiment: left to ``Model.log``, it would go
    to the fluent "active" experiment (Default, ``0``) whenever no fluent run is active.
    """
    artifacts = {p.name: str(p) for p in model.extra_files}
    if len(artifacts) < len(model.extra_files) or PROGRAM in artifacts:
        raise ValueError(f"extra files of model {name!r} need distinct names, none {PROGRAM!r}")
    client = MlflowClient()
    run = client.get_run(run_id)
    # imported here: mlflow.pyfunc and the exporter take seconds that a process logging no model
    # (`ecogen stage prepare`, what `dvc repro` runs per stage) would pay at every start
    import mlflow.pyfunc
    from mlflow.models import Model, ModelSignature
    from mlflow.types import Schema, TensorSpec

    from ecogen.models.export import export_raw_images

    with _MODEL_LOCK, _quiet("mlflow.pyfunc"), tempfile.TemporaryDirectory() as tmp:
        # exported before the LoggedModel is made: a module that does not export leaves none behind
        program = export_raw_images(model.module, model.output, model.input_example)
        path = Path(tmp) / "model.pt2"
        torch.export.save(program, path)
        example = model.input_example  # uint8 images in; out, named: the program's output on it (its width)
        with torch.inference_mode():
            out = program.module()(torch.from_numpy(example))
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *example.shape[1:]))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *out.shape[1:]), model.output)]),
        )
        logged = client.create_logged_model(
            experiment_id=run.info.experiment_id,
            name=name,
            source_run_id=run_id,
            tags={DATA_VERSION: data_version} if data_version else None,
            params=run.data.params,  # as Model.log does itself: the run's params describe the model
        )
        info = Model.log(
            artifact_path=None,
            flavor=mlflow.pyfunc,
            name=name,
            model_id=logged.model_id,
            run_id=run_id,  # links the model as an output of the run; no fluent run needed
            python_model=str(IMAGE_MODEL_CODE),
            artifacts={PROGRAM: str(path), **artifacts},
            signature=signature,
            input_example=example,
            pip_requirements=MODEL_PIP_REQUIREMENTS,
        )
    return info.model_uri


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """INFO lines of ``logger`` dropped while inside: MLflow says, once a model, that it checks the
    input example against the signature (inside the lock: no other thread logs a model)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


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
    log_metrics(client, run_id, metrics)


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
