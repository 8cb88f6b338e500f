"""Quiet, offline defaults for the tracking and versioning tools, set once by an entry point.

Only ``setdefault``: a value the user exported always wins.  Called from the CLI, DVC stage and
Prefect flow entry points, never at import time.
"""

from __future__ import annotations

import os

OFFLINE_ENV_DEFAULTS: dict[str, str] = {
    # MLflow 3 otherwise looks up a telemetry host on every client start.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # Progress bars per artifact upload clutter the logs of parallel edges.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # CodeCarbon logs at INFO per measurement by default.
    "CODECARBON_LOG_LEVEL": "error",
    # Each DVC command otherwise spawns an analytics process (which crashed offline).
    "DVC_NO_ANALYTICS": "1",
}


def set_offline_env_defaults() -> None:
    for key, value in OFFLINE_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
