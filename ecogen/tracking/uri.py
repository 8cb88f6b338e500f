"""Where MLflow records runs: one resolution rule, applied at the entry point.

``tracking.uri`` in params.yaml wins, then ``$MLFLOW_TRACKING_URI``, then a SQLite file in the
project root (MLflow 3's own default is ``<cwd>/mlflow.db``, which moves with the working
directory; pinning it to the project keeps `dvc repro`, `ecogen run` and Prefect workers on one
store).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import mlflow

from ecogen.config.params import TrackingParams


def resolve_tracking_uri(tracking: TrackingParams, project_root: Path) -> str:
    if tracking.uri:
        return tracking.uri
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return env
    return f"sqlite:///{(project_root.resolve() / 'mlflow.db').as_posix()}"


def use_tracking_uri(tracking: TrackingParams, project_root: Path) -> str:
    """Resolve the URI and make it MLflow's current one; returns it.

    ``mlflow.pytorch.log_model`` only reads the process-wide URI, so it has to be set; MLflow also
    exports it as ``MLFLOW_TRACKING_URI`` so subprocesses (e.g. `dvc repro` stages) log to the
    same store.
    """
    uri = resolve_tracking_uri(tracking, project_root)
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    return uri


def artifact_location(uri: str, project_root: Path, experiment: str) -> str | None:
    """Artifact root for a new experiment: ``<project>/mlruns/<experiment>`` for a local store.

    Left to MLflow otherwise: a tracking server decides where its artifacts go.  For a local
    store MLflow would use ``<cwd>/mlruns/<id>``, which differs between entry points.
    """
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
        return (project_root.resolve() / "mlruns" / folder).as_uri()
    return None
