"""Helpers of the end-to-end tests: a throw-away project directory and an offline environment.

Every e2e test works in its own temporary project (the repo's params.yaml, pipelines.yaml and
dvc.yaml copied in, a fresh git repository) and drives the real tools as subprocesses — `ecogen`,
`dvc`, `prefect` from this interpreter's bin directory — with an environment that keeps every
store inside that directory: MLflow's default ``sqlite:///<project>/mlflow.db`` (no
``MLFLOW_TRACKING_URI``), ``PREFECT_HOME=<project>/.prefect``, and no telemetry anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecogen.config.load import deep_merge

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: ecogen, dvc, prefect live here

# Speed-ups on top of the `quick` pipeline that keep every stage and every edge.
TINY = {
    "pretrain": {"epochs": 1},
    "peft": {"epochs": 1},
    "hfsl": {"rounds": 2},
    "relay": {"epochs": 1, "public_samples": 300, "synthetic_samples": 100},
}

# Environment variables that would point a subprocess at a store outside the project.
LEAKY_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "PREFECT_API_URL",
    "PREFECT_PROFILES_PATH",
    "PREFECT_API_KEY",
)


def offline_env(project: Path, **extra: str) -> dict[str, str]:
    """os.environ for a subprocess working in ``project``: nothing is written outside it."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV and not k.startswith("PREFECT_")}
    tmp = project / ".tmp"
    tmp.mkdir(exist_ok=True)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PREFECT_HOME=str(project / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        DVC_NO_ANALYTICS="1",
        CODECARBON_LOG_LEVEL="error",
        TQDM_DISABLE="1",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        TMPDIR=str(tmp),  # e.g. Prefect's runner_storage, Lightning's scratch files
        GIT_CONFIG_NOSYSTEM="1",
        # Tiny models on a 2-core machine: with torch's default 2 intra-op threads per process
        # (and 4 edge threads in the Prefect flow), any other load on the machine makes
        # OpenMP threads spin against each other — an HFSL stage measured 74 s instead of 18 s.
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    env.update(extra)
    return env


def sh(
    args: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 300,
    check: bool = True,
    merge_stderr: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command, output captured (stderr folded into stdout unless ``merge_stderr`` is false,
    e.g. when stdout must parse as JSON); on failure show its output."""
    out = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if check and out.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {out.returncode}:\n{out.stdout[-6000:]}{out.stderr or ''}"
        )
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))


def quick_overrides(*more: Mapping[str, Any]) -> dict[str, Any]:
    """The `quick` pipeline's overrides (from the repo's pipelines.yaml) with TINY and ``more``."""
    out = read_yaml(ROOT / "pipelines.yaml")["pipelines"]["quick"].get("overrides", {})
    for over in (TINY, *more):
        out = deep_merge(out, over)
    return out


def make_project(path: Path, git: bool = True) -> Path:
    """params.yaml, pipelines.yaml and dvc.yaml from the repo in a fresh (git) directory."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "pipelines.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, path / name)
    if git:
        env = offline_env(path)
        sh(["git", "init", "-q"], path, env)
        sh(["git", "config", "user.name", "EcoGen e2e"], path, env)
        sh(["git", "config", "user.email", "e2e@example.invalid"], path, env)
        sh(["git", "config", "commit.gpgsign", "false"], path, env)
    return path


def sqlite_uri(project: Path) -> str:
    return f"sqlite:///{(project / 'mlflow.db').resolve().as_posix()}"
