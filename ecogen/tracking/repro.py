"""One parent MLflow run per `dvc repro`, so that its stage runs nest like those of ``ecogen run``.

`dvc repro` starts every stage as its own ``ecogen stage S`` process, one after the other.  They
find their common parent by the `dvc` process that started them: its host, pid and start time
form the parent's ``ecogen.invocation`` tag.  The first stage of a repro creates the parent (a
pipeline run named ``dvc``, tag ``ecogen.pipeline=dvc``); each stage sets it RUNNING while it
runs and terminates it after, so it ends FINISHED (or FAILED) with the repro's last stage
without anyone knowing which stage is last.  ``ecogen stage S`` typed by hand, with no `dvc`
above it, gets a parent of its own.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil
from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME

from ecogen.config.params import Params
from ecogen.config.pipelines import DVC_PIPELINE as DVC_PIPELINE  # re-exported for the glue
from ecogen.config.pipelines import NO_PROFILE
from ecogen.tracking.runs import KIND, PROFILE, quote, start_pipeline_run, tracking_client

INVOCATION = "ecogen.invocation"  # "<host>:<pid>:<start time>" of the process the stages run under


def dvc_args(cmdline: list[str]) -> list[str] | None:
    """The arguments of a `dvc` command line (`dvc repro`, `python /venv/bin/dvc repro`,
    `python -m dvc repro`); None for any other command."""
    for i, arg in enumerate(cmdline[:3]):
        if Path(arg).name in ("dvc", "dvc.exe"):
            return cmdline[i + 1 :]
    return None


def invocation() -> tuple[str, str]:
    """(key, command): the nearest `dvc` process above this one, or this process when none."""
    me = psutil.Process(os.getpid())
    found, command = me, "ecogen stage"
    try:
        parents = me.parents()
    except psutil.Error:  # an ancestor we may not look at: no parent run to share
        parents = []
    for proc in parents:
        try:
            args = dvc_args(proc.cmdline())
        except psutil.Error:
            continue
        if args is not None:
            found, command = proc, " ".join(["dvc", *args])
            break
    return f"{socket.gethostname()}:{found.pid}:{found.create_time():.3f}", command


def repro_parent(params: Params, project_root: Path) -> str:
    """The parent run of the `dvc repro` this stage belongs to, created by its first stage, and
    set RUNNING for this stage; returns its id."""
    client, exp_id = tracking_client(params, project_root)
    key, command = invocation()
    query = f"tags.`{KIND}` = 'pipeline' AND tags.`{INVOCATION}` = {quote(key)}"
    if found := client.search_runs([exp_id], query, max_results=1):
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    tags = {INVOCATION: key, MLFLOW_SOURCE_NAME: command, PROFILE: NO_PROFILE}
    return start_pipeline_run(params, DVC_PIPELINE, project_root, tags=tags)
