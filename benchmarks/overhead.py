"""Orchestration overhead: ``ecogen run PIPELINE`` against its stage functions called directly.

Prints one JSON object on stdout (progress on stderr)::

    python -m benchmarks.overhead                 # the quick pipeline (about 3 minutes in all)
    python -m benchmarks.overhead --pipeline default

In a throw-away project (this repo's params.yaml, pipelines.yaml and dvc.yaml, a fresh git
repository, every store inside it), two processes with the same environment and threads:

* ``direct``: the pipeline's params (overrides applied as ``ecogen run`` applies them), then
  :func:`ecogen.stages.registry.run_stage` for each of its stages in order — the computation
  alone, no Prefect, MLflow, DVC or CodeCarbon;
* ``ecogen_run``: ``ecogen run PIPELINE`` — the same stages as a Prefect flow (temporary
  server), every stage and edge tracked in MLflow with its energy, the data versioned by DVC —
  the project's first run, which also creates the Prefect and MLflow databases and the DVC repo;
* ``ecogen_run_again``: the same command once more in the same project (every stage runs again:
  a pipeline reuses only other pipelines' stages), as every later run of a project does.

``ratio`` = ecogen_run ÷ direct and ``ratio_again`` = ecogen_run_again ÷ direct (target ≤ 1.05).
Wall time of each whole process, imports included.  A pipeline with trials or cycles is refused
(its stages repeat).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import report
from ecogen.runtime.environment import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def direct(pipeline: str, project: Path) -> None:
    """The pipeline's stages, one after another, as plain function calls in this process."""
    from ecogen.config.load import load_params, load_pipelines, profile_overrides
    from ecogen.stages.registry import run_stage
    from ecogen.workspace import Workspace

    specs = load_pipelines(project / "pipelines.yaml")
    spec = specs.pipelines[pipeline]
    params = load_params(project / "params.yaml", spec.overrides, [], profile_overrides(specs, None))
    ws = Workspace(project / "direct")
    for stage in spec.stages:
        t = time.perf_counter()
        run_stage(stage, params, ws)
        print(f"direct: {stage} {time.perf_counter() - t:.1f} s", file=sys.stderr)


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}",
        PREFECT_HOME=str(project / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        DVC_NO_ANALYTICS="1",
        GIT_CONFIG_NOSYSTEM="1",
    )
    for key, value in DEFAULTS.items():  # what ecogen's entry points set (MKL's code path too)
        env.setdefault(key, value)
    return env


def _timed(cmd: list[str], project: Path, env: dict[str, str], log: Path) -> float:
    t = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}; see {log}")
    return seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    spec = yaml.safe_load((ROOT / "pipelines.yaml").read_text())["pipelines"][args.pipeline]
    if spec.get("trials") or spec.get("cycle"):
        raise SystemExit(f"{args.pipeline} repeats stages (trials or cycles): give a plain pipeline")
    with tempfile.TemporaryDirectory(prefix="ecogen-overhead-") as tmp:
        project = Path(tmp)
        for name in ("params.yaml", "pipelines.yaml", "dvc.yaml"):
            shutil.copy(ROOT / name, project / name)
        env = _env(project)
        subprocess.run(["git", "init", "-q"], cwd=project, env=env, check=True)
        py = [sys.executable, "-m", "benchmarks.overhead", "--direct", args.pipeline, str(project)]
        run = [str(BIN / "ecogen"), "run", args.pipeline]
        seconds = {
            "direct": _timed(py, project, env, project / "direct.log"),
            "ecogen_run": _timed(run, project, env, project / "run.log"),
            "ecogen_run_again": _timed(run, project, env, project / "run-again.log"),
        }
        for side, s in seconds.items():
            print(f"overhead: {side} {s:.1f} s", file=sys.stderr)
        if args.keep:
            shutil.copytree(project, args.keep, dirs_exist_ok=True)
    return {
        "pipeline": args.pipeline,
        "stages": spec["stages"],
        "seconds": seconds,
        "ratio": seconds["ecogen_run"] / seconds["direct"],
        "ratio_again": seconds["ecogen_run_again"] / seconds["direct"],
        "cpu_count": os.cpu_count(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", default="quick")
    ap.add_argument("--keep", default=None, help="copy the throw-away project here afterwards")
    ap.add_argument("--direct", nargs=2, metavar=("PIPELINE", "PROJECT"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.direct:  # the child process of the `direct` side
        direct(args.direct[0], Path(args.direct[1]))
        return None
    return report(run, args)


if __name__ == "__main__":
    main()
