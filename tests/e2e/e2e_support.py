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
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.agents import free_port as free_port  # re-exported for the e2e tests
from benchmarks.agents import start_process
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


def run_tiny(
    project: Path, pipeline: str = "quick", timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Commit the project (a commit the runs can name), then ``ecogen run PIPELINE`` shrunk by TINY."""
    env = offline_env(project)
    sh(["git", "add", "-A"], project, env)
    sh(["git", "commit", "-q", "-m", "the project"], project, env)
    sets = [f"--set={section}.{key}={value}" for section, kv in TINY.items() for key, value in kv.items()]
    return sh(["ecogen", "run", pipeline, *sets], project, env, timeout=timeout)


# its own session: a process group holding exactly what the command spawns
start = start_process


def stop(proc: subprocess.Popen[str] | None, grace: float = 20) -> None:
    """SIGTERM, wait, then SIGKILL — the process and the group it leads (its children)."""
    if proc is None:
        return

    def signal_group(sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)  # the group id is the leader's pid (start_new_session)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            proc.wait(10)
    signal_group(signal.SIGTERM)  # children left behind by a leader that exited
    time.sleep(0.5)
    signal_group(signal.SIGKILL)


def wait_for(what: str, probe: Callable[[], Any], timeout: float, logs: list[Path], every: float = 1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
