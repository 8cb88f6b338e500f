"""The served models in MLflow's Model Registry: one registered model per edge and one for the FM.

Names: ``<stream>.edge-<domain>`` and ``<stream>.fm``, where the stream is the pipeline
(``<pipeline>-<profile>`` with a profile; see :func:`ecogen.served.lineage`).  Every stream run
registers each edge's challenger as a new version, tagged with the increment, the run and the
gate's decision; the ``champion`` alias is what the edge serves and
what the next run starts from.  Moving the alias (the gate, ``ecogen promote``, ``ecogen
rollback``) records why on the version (``ecogen.promoted`` / ``ecogen.demoted``) and keeps the
alias's history on the registered model (``ecogen.champions``), which rollback walks back.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ecogen.config.pipelines import NO_PROFILE
from ecogen.tracking.runs import KIND, STAGE

CHAMPION = "champion"
HISTORY = "ecogen.champions"  # registered-model tag: the champion's versions, oldest first
PROMOTED = "ecogen.promoted"  # model-version tags: when and why the alias came / went
DEMOTED = "ecogen.demoted"
DECISION = "ecogen.gate"  # model-version tag: the gate's decision on this challenger
INCREMENT = "ecogen.increment"  # pipeline runs and model versions: the increment taken in
STARTED_FROM = "ecogen.started_from"  # pipeline runs: the registered versions the run started from
LINEAGE = "ecogen.stream"  # pipeline runs: the stream they belong to (ecogen.served.lineage)


class RegistryError(RuntimeError):
    """A registry request that cannot be met; the message says why, in one line."""


def prefix(pipeline: str, profile: str | None) -> str:
    return pipeline if profile in (None, NO_PROFILE) else f"{pipeline}-{profile}"


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def first_version(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version(name, "1")
    except MlflowException:
        return None


def fetch_file(version: ModelVersion, filename: str, dest: Path) -> Path:
    """Copy the file named ``filename`` (e.g. ``tunable.pt``) that the model version holds to
    ``dest``, downloading the model's files (from the artifact store: no shared disk needed)."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="ecogen-served-") as tmp:
        uri = f"models:/{version.name}/{version.version}"
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        found = sorted(local.rglob(filename))
        if not found:
            raise RegistryError(f"{version.name} version {version.version} holds no {filename}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[0], dest)
    return dest


def stage_models(client: MlflowClient, pipeline_run_id: str, stage: str) -> dict[str, str]:
    """Logged-model name → model id of what ``stage`` logged in this pipeline run (its own run's
    models and its edge runs'; the newest stage run of that name)."""
    parent = client.get_run(pipeline_run_id)
    exp = parent.info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{pipeline_run_id}' AND tags.`{STAGE}` = '{stage}'"
    runs = client.search_runs(
        [exp], f"{query} AND tags.`{KIND}` = 'stage'", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        return {}
    stage_run = runs[0]
    edges = client.search_runs(
        [exp], f"tags.`mlflow.parentRunId` = '{stage_run.info.run_id}'", max_results=1000
    )
    out: dict[str, str] = {}
    for run in [stage_run, *edges]:
        for output in run.outputs.model_outputs if run.outputs else []:
            out[client.get_logged_model(output.model_id).name] = output.model_id
    return out


def register(
    client: MlflowClient, name: str, model_id: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    """A new version of ``name`` (created if needed) from a logged model."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="Served by EcoGen; the `champion` alias is what serves."
        )
    return client.create_model_version(
        name, f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
    )


def _history(client: MlflowClient, name: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY, "")
    return [v for v in tag.split(",") if v]


def _stamped(text: str) -> str:
    """``text`` after the time (UTC), cut to what a model-version tag holds."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: {text}"[:5000]


def promote(client: MlflowClient, name: str, version: str | int, reason: str) -> None:
    """Point ``champion`` at ``version``, saying why on it and on the version it replaces."""
    version = str(version)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{name} has no version {version}") from None
    old = champion(client, name)
    if old is not None and str(old.version) == version:
        raise RegistryError(f"{name} version {version} is the champion already")
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, PROMOTED, _stamped(reason))
    if old is not None:
        client.set_model_version_tag(name, old.version, DEMOTED, _stamped(f"replaced by {version}: {reason}"))
    client.set_registered_model_tag(name, HISTORY, ",".join([*_history(client, name), version]))


def rollback(client: MlflowClient, name: str, reason: str) -> str:
    """Point ``champion`` back at the version that served before the current one; returns it."""
    history = _history(client, name)
    current = champion(client, name)
    if current is None:
        raise RegistryError(f"{name} has no champion to roll back")
    earlier = [v for v in history[:-1] if v != str(current.version)]
    if not earlier:
        raise RegistryError(
            f"{name} version {current.version} is its first champion: nothing to roll back to"
        )
    back = earlier[-1]
    client.set_registered_model_alias(name, CHAMPION, back)
    client.set_model_version_tag(name, back, PROMOTED, _stamped(f"rolled back to: {reason}"))
    client.set_model_version_tag(name, current.version, DEMOTED, _stamped(f"rolled back from: {reason}"))
    # the rolled-back version leaves the history, so a second rollback goes one further
    client.set_registered_model_tag(name, HISTORY, ",".join([*history[: history.index(back)], back]))
    return back
