"""A shared tracking server that goes away in the middle of a run, and comes back.

A real `mlflow server` (artifact proxy, its store under the test's folder); `ecogen run quick`
tracks to it; when the run reaches its hfsl stage the server is stopped.  The run ends with one
line naming the server and saying how to go on, no traceback; the server is started again on the
same store and `ecogen run quick --resume` finishes the same MLflow run without running the
stages that had finished.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import TINY, make_project, offline_env, sh
from mlflow import MlflowClient

from benchmarks.agents import free_port, healthy, mlflow_env, mlflow_server, start_process, stop_process

pytestmark = pytest.mark.slow


def _wait(what: str, probe, timeout: float, log: Path) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{log.read_text(errors='replace')[-4000:]}")


def test_a_run_whose_tracking_server_goes_away_ends_in_one_line_and_resumes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    env = offline_env(project)
    sh(["git", "add", "-A"], project, env)
    sh(["git", "commit", "-q", "-m", "the project"], project, env)
    store = tmp_path / "store"
    store.mkdir()
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = offline_env(project, MLFLOW_TRACKING_URI=uri)
    sets = [f"--set={section}.{key}={value}" for section, kv in TINY.items() for key, value in kv.items()]
    server_log, run_log = tmp_path / "mlflow-server.log", tmp_path / "run.log"

    def serve() -> subprocess.Popen[str]:
        with server_log.open("a") as f:
            proc = start_process(mlflow_server(store, port), tmp_path, mlflow_env(env), f)
        _wait("the MLflow server", lambda: healthy(f"{uri}/health"), 90, server_log)
        return proc

    server = serve()
    try:
        with run_log.open("w") as out, (tmp_path / "run.err").open("w") as err:
            run = subprocess.Popen(
                ["ecogen", "run", "quick", *sets], cwd=project, env=env, stdout=out, stderr=err, text=True
            )
            _wait(
                "the hfsl stage",
                lambda: "stage 4/5: hfsl" in (tmp_path / "run.err").read_text(),
                300,
                run_log,
            )
            stop_process(server)
            rc = run.wait(180)
        said = (tmp_path / "run.err").read_text()
        last = [line for line in said.splitlines() if line.strip()][-1]
        assert rc == 1, said[-4000:]
        assert last.startswith(f"error: the MLflow tracking server {uri} stopped answering"), said[-4000:]
        assert "--resume" in last
        assert "Traceback" not in said + run_log.read_text(), said[-6000:]

        server = serve()  # back, on the same store
        resumed = sh(["ecogen", "run", "quick", "--resume", *sets], project, env, timeout=300)
        assert "resume: prepare finished in run" in resumed.stdout, resumed.stdout[-4000:]
        assert "resume: pretrain finished in run" in resumed.stdout, resumed.stdout[-4000:]
    finally:
        stop_process(server)
        if "run" in locals() and run.poll() is None:
            run.kill()

    server = serve()  # read what the store holds
    try:
        client = MlflowClient(tracking_uri=uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        parents = client.search_runs(experiments, "tags.`ecogen.kind` = 'pipeline'")
        assert [r.info.status for r in parents] == ["FINISHED"]  # one run, resumed to its end
        assert (project / "runs" / "quick" / "metrics" / "infer.json").is_file()
    finally:
        stop_process(server)
