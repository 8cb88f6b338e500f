"""A run holds its project: a second run is refused by name and PID; SIGTERM ends a run as
Ctrl-C does; the Prefect server a run starts never outlives it, not even a kill -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import BIN, make_project, offline_env, quick_overrides, read_yaml, sh, sqlite_uri, write_yaml
from mlflow import MlflowClient

from ecogen.runtime.runlock import project_lock

pytestmark = pytest.mark.slow

NAME = "e2esignals"


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _start(project: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """`ecogen run NAME` in the background, once its Prefect server is up and it runs prepare."""
    run = subprocess.Popen(
        [str(BIN / "ecogen"), "run", NAME], cwd=project, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        servers = [c for c in _children(run.pid) if "server start" in _cmdline(c)]
        if servers and (project / "runs" / NAME / ".ecogen-run.json").is_file():
            return run, servers[0]
        assert run.poll() is None, run.stdout.read() if run.stdout else ""
        time.sleep(0.5)
    run.kill()
    pytest.fail("the run did not get going within 120 s")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "project")
    spec = read_yaml(project / "pipelines.yaml")
    # long enough to be caught running: more pre-training epochs than the e2e tiny size
    spec["pipelines"][NAME] = {
        "stages": ["prepare", "pretrain"],
        "overrides": quick_overrides({"pretrain": {"epochs": 200}}),
    }
    write_yaml(project / "pipelines.yaml", spec)
    return project


def test_a_second_run_is_refused_and_sigterm_stops_the_first_with_its_server(
    project: Path, offline_process_env: None
) -> None:
    env = offline_env(project)
    run, server = _start(project, env)
    second = sh(["ecogen", "run", NAME], project, env, timeout=120, check=False)
    assert second.returncode == 2, second.stdout[-2000:]
    assert f"pipeline {NAME} is running in process {run.pid}" in second.stdout, second.stdout[-2000:]
    run.send_signal(signal.SIGTERM)
    out, _ = run.communicate(timeout=120)
    assert run.returncode != 0
    deadline = time.monotonic() + 30
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(server), "the Prefect server outlived its run"
    client = MlflowClient(sqlite_uri(project))
    experiment = client.get_experiment_by_name("ecogen")
    assert experiment is not None
    query = f"tags.`ecogen.pipeline` = '{NAME}' AND tags.`ecogen.kind` = 'pipeline'"
    (pipeline,) = client.search_runs([experiment.experiment_id], query)
    assert pipeline.info.status in ("KILLED", "FAILED"), out[-2000:]


def test_kill_9_takes_the_server_along_and_frees_the_project(
    project: Path, offline_process_env: None
) -> None:
    env = offline_env(project)
    run, server = _start(project, env)
    run.kill()
    run.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(server), "the Prefect server outlived a killed run"
    with project_lock(project, "next"):  # the kernel dropped the dead run's lock
        pass


def test_kill_9_in_an_hfsl_round_then_resume_continues_from_that_round(
    tmp_path: Path, offline_process_env: None
) -> None:
    project = make_project(tmp_path / "project")
    spec = read_yaml(project / "pipelines.yaml")
    name = "e2erounds"
    over = quick_overrides({"hfsl": {"rounds": 6, "local_steps": 3}})
    spec["pipelines"][name] = {"stages": ["prepare", "pretrain", "finetune", "hfsl"], "overrides": over}
    write_yaml(project / "pipelines.yaml", spec)
    env = offline_env(project)
    run = subprocess.Popen(
        [str(BIN / "ecogen"), "run", name], cwd=project, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert run.stdout is not None
    seen = []
    for line in run.stdout:
        seen.append(line)
        if "round 3/6" in line:
            break
    servers = [c for c in _children(run.pid) if "server start" in _cmdline(c)]
    run.kill()  # SIGKILL in round 3 or 4 (the checkpoint is written just after the log line)
    run.wait(timeout=30)
    assert any("round 3/6" in line for line in seen), "".join(seen[-40:])
    assert (project / "runs" / name / "artifacts" / "hfsl" / ".rounds.pt").is_file()
    out = sh(["ecogen", "run", name, "--resume"], project, env, timeout=600).stdout
    found = re.search(r"hfsl: continuing after round (\d)", out)
    assert found and int(found.group(1)) in (2, 3, 4), out[-3000:]
    k = int(found.group(1))
    assert "round 1/6" not in out and f"round {k}/6" not in out and f"round {k + 1}/6" in out
    assert "round 6/6" in out
    assert not (project / "runs" / name / "artifacts" / "hfsl" / ".rounds.pt").exists()
    # nothing left behind: no run RUNNING in MLflow (the killed attempt's are KILLED), no server
    client = MlflowClient(sqlite_uri(project))
    experiment = client.get_experiment_by_name("ecogen")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert runs and "RUNNING" not in {r.info.status for r in runs}, [
        (r.info.run_name, r.info.status) for r in runs
    ]
    assert {r.info.status for r in runs if r.data.tags.get("ecogen.kind") == "pipeline"} == {"FINISHED"}
    assert servers and not any(_alive(pid) for pid in servers), "the killed run's Prefect server lives on"
