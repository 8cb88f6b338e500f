"""Where a run came from, as MLflow shows it: its source (the command or the Prefect deployment),
user, git commit, and the hash of its params."""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER

PARAMS_HASH = "ecogen.params_hash"


def git_commit(project_root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def params_hash(flat: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(flat), sort_keys=True).encode()).hexdigest()[:16]


def source_tags(
    project_root: Path, pipeline: str, flat_params: Mapping[str, str], source: str | None = None
) -> dict[str, str]:
    """The tags MLflow shows as a run's source (``source``, e.g. the Prefect deployment that
    started it, or ``ecogen run PIPELINE``), user and commit, and the params' hash."""
    tags = {
        MLFLOW_SOURCE_NAME: source or f"ecogen run {pipeline}",
        MLFLOW_SOURCE_TYPE: "JOB" if source else "LOCAL",
        MLFLOW_USER: getpass.getuser(),
        PARAMS_HASH: params_hash(flat_params),
    }
    if commit := git_commit(project_root):
        tags[MLFLOW_GIT_COMMIT] = commit
    return tags
