"""Stages and trials on Prefect agents that share no disk with the project, against real servers.

One module-wide set of services on 127.0.0.1 (``benchmarks/agents.py`` starts them): a `prefect
server`, an `mlflow server` with an artifact proxy (``--artifacts-destination``), and two
"machines", each an empty folder of its own with two `prefect worker` processes in it: machine A
polls the pools ``gpu`` and ``trials``, machine B ``edge`` and ``trials``.  A machine sees only
the servers' addresses: its environment names PREFECT_API_URL and nothing of the project (no
tracking URI, no path; its flow runs work in temporary folders under it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import quick_overrides, read_yaml, sh, write_yaml
from mlflow import MlflowClient
from mlflow.entities import Run

from benchmarks.agents import MACHINES, Services, experiment, make_project, quick, services

pytestmark = pytest.mark.slow

STAGES = ["prepare", "pretrain", "finetune", "hfsl", "infer"]
# what a run measures of itself rather than of the model: differs between any two runs
OWN = ("duration", "energy", "emissions", "power", "latency", "_s", "_ms", "time")


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with services(tmp_path_factory.mktemp("agents")) as svc:
        yield svc


def _runs(client: MlflowClient, pipeline: str, kind: str) -> list[Run]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.`ecogen.pipeline` = '{pipeline}' and tags.`ecogen.kind` = '{kind}'"
    return list(client.search_runs(experiments, query, max_results=500))


def _model_metrics(run: Run) -> dict[str, float]:
    return {k: v for k, v in run.data.metrics.items() if not any(o in k for o in OWN)}


def _by(runs: list[Run], tag: str) -> dict[str, Any]:
    return {r.data.tags[tag]: r for r in runs}


def _run(agents: Services, project: Path, *args: str) -> str:
    out = sh(["ecogen", "run", *args], project, agents.env(project), timeout=600, check=False)
    assert out.returncode == 0, f"{out.stdout[-6000:]}\n{agents.tails()}"
    return out.stdout


def test_quick_placed_on_two_machines_equals_a_local_run(agents: Services, tmp_path: Path) -> None:
    tiny = {"overrides": quick_overrides()}
    project = make_project(tmp_path / "project", {"placed": quick(True, tiny), "here": quick(False, tiny)})

    _run(agents, project, "placed")
    _run(agents, project, "here", "--no-reuse")

    client = MlflowClient(tracking_uri=agents.mlflow_uri)
    placed = _by(_runs(client, "placed", "stage"), "ecogen.stage")
    assert {s: r.data.tags["ecogen.worker"] for s, r in placed.items()} == {
        "prepare": "parent",
        "pretrain": "machine-a-gpu",
        "finetune": "machine-b-edge",
        "hfsl": "machine-b-edge",
        "infer": "machine-b-edge",
    }
    # the parent received every stage's outputs back into its pipeline folder
    for stage in STAGES:
        assert (project / "runs" / "placed" / "metrics" / f"{stage}.json").is_file()
    assert (project / "runs" / "placed" / "artifacts" / "fm.pt").is_file()
    # what ran on a worker is offered for reuse here, as what ran in this process is
    keys = json.loads((project / "runs" / "placed" / ".stage-keys.json").read_text())
    assert {s: keys[s]["run_id"] for s in ("pretrain", "finetune")} == {
        s: placed[s].info.run_id for s in ("pretrain", "finetune")
    }
    # the machines hold nothing of the project: their flow runs worked in temporary folders
    for machine in MACHINES:
        assert not list((agents.root / machine).glob("**/params.yaml"))

    here = _by(_runs(client, "here", "stage"), "ecogen.stage")
    assert {s: _model_metrics(r) for s, r in placed.items()} == {
        s: _model_metrics(r) for s, r in here.items()
    }
    assert _model_metrics(placed["hfsl"]) and _model_metrics(placed["infer"])  # something was compared
    parents = {p: _runs(client, p, "pipeline") for p in ("placed", "here")}
    assert [r.info.status for r in parents["placed"]] == ["FINISHED"]
    assert _model_metrics(parents["placed"][0]) == _model_metrics(parents["here"][0])


def test_an_experiment_s_trials_run_on_both_workers_of_its_pool(agents: Services, tmp_path: Path) -> None:
    tiny = {"overrides": quick_overrides()}
    project = make_project(
        tmp_path / "project", {"fanned": experiment(None, 2, tiny), "inturn": experiment(None, 1, tiny)}
    )
    _run(agents, project, "fanned", "--place", "trials=trials")  # as pipelines.yaml's trials.pool
    _run(agents, project, "inturn", "--no-reuse")

    client = MlflowClient(tracking_uri=agents.mlflow_uri)
    fanned = _by(
        [r for r in _runs(client, "fanned", "stage") if "ecogen.trial" in r.data.tags], "ecogen.trial"
    )
    inturn = _by(
        [r for r in _runs(client, "inturn", "stage") if "ecogen.trial" in r.data.tags], "ecogen.trial"
    )
    assert sorted(fanned) == ["c1-r0", "c2-r0"]
    # a worker takes one trial at a time (--limit 1) and two were in flight: one each
    assert sorted(r.data.tags["ecogen.worker"] for r in fanned.values()) == [
        "machine-a-trials",
        "machine-b-trials",
    ]
    assert {t: _model_metrics(r) for t, r in fanned.items()} == {
        t: _model_metrics(r) for t, r in inturn.items()
    }
    keys = json.loads((project / "runs" / "fanned" / ".stage-keys.json").read_text())
    for trial in fanned:
        assert (project / "runs" / "fanned" / "metrics" / "trials" / trial / "hfsl.json").is_file()
        assert keys[f"hfsl[{trial}]"]["run_id"] == fanned[trial].info.run_id  # offered for reuse


def test_a_whole_pipeline_on_a_worker_clones_the_project_and_reads_its_params(
    agents: Services, tmp_path: Path
) -> None:
    """A pipeline with a ``work_pool``: `ecogen deploy` registers it; the worker clones the project
    from its git remote at each run, so what is committed and pushed is what runs."""
    tiny = {"overrides": quick_overrides(), "work_pool": "gpu"}
    project = make_project(tmp_path / "project", {"remote": quick(False, tiny)})
    env = agents.env(project)
    origin = tmp_path / "origin.git"  # the team's git server
    sh(["git", "init", "-q", "--bare", str(origin)], tmp_path, env)
    sh(["git", "remote", "add", "origin", str(origin)], project, env)
    params = read_yaml(project / "params.yaml")
    params["tracking"]["uri"] = agents.mlflow_uri  # a worker knows the servers from the project
    params["inference"]["d2d_bandwidth_mbps"] = 66.0
    write_yaml(project / "params.yaml", params)
    sh(["git", "commit", "-qam", "track to the team's server"], project, env)
    sh(["git", "push", "-q", "origin", "HEAD"], project, env)

    # a pool that does not exist is one line, and nothing is registered
    pipelines = read_yaml(project / "pipelines.yaml")
    pipelines["pipelines"]["nowhere"] = {**pipelines["pipelines"]["remote"], "work_pool": "nowhere"}
    write_yaml(project / "pipelines.yaml", pipelines)
    out = sh(["ecogen", "deploy", "nowhere"], project, env, timeout=120, check=False, merge_stderr=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "work pool 'nowhere' does not exist" in out.stderr and "prefect work-pool create" in out.stderr

    out = sh(["ecogen", "deploy", "remote"], project, env, timeout=120, check=False)
    assert out.returncode == 0, f"{out.stdout[-4000:]}\n{agents.tails()}"
    run = ["prefect", "deployment", "run", "ecogen-pipeline/remote", "--watch", "--watch-timeout", "400"]
    out = sh([*run, "--param", 'overrides=["hfsl.rounds=1"]'], project, env, timeout=420, check=False)
    assert out.returncode == 0 and "Completed" in out.stdout, f"{out.stdout[-4000:]}\n{agents.tails()}"

    client = MlflowClient(tracking_uri=agents.mlflow_uri)
    [parent] = _runs(client, "remote", "pipeline")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlflow.source.name"] == "prefect deployment ecogen-pipeline/remote"
    assert float(parent.data.params["inference.d2d_bandwidth_mbps"]) == 66.0  # the pushed file
    assert int(parent.data.params["hfsl.rounds"]) == 1  # the run's override
    workers = {r.data.tags["ecogen.worker"] for r in _runs(client, "remote", "stage")}
    assert workers == {"machine-a-gpu"}
    assert not (project / "runs" / "remote").exists()  # it ran there, not here


def test_a_stage_that_fails_on_its_worker_ends_the_run_in_one_line(agents: Services, tmp_path: Path) -> None:
    """Pre-training asks for CUDA on a worker that has none: it fails there; here, one line names
    the placed run and its pool, exit 1, and the parent run is FAILED."""
    tiny = {"overrides": quick_overrides()}
    project = make_project(tmp_path / "project", {"broken": quick(False, tiny)})
    args = ["ecogen", "run", "broken", "--place", "pretrain=gpu", "--set", "accelerator=cuda"]
    out = sh(args, project, agents.env(project), timeout=300, check=False, merge_stderr=False)
    assert out.returncode == 1, f"{out.stdout[-3000:]}{out.stderr[-3000:]}"
    said = "error: pretrain on work pool gpu: flow run pretrain ended Failed"
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(said) and "CUDA" in lines[-1], out.stderr[-3000:]
    assert sum(line.startswith("error:") for line in lines) == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    client = MlflowClient(tracking_uri=agents.mlflow_uri)
    [parent] = _runs(client, "broken", "pipeline")
    assert parent.info.status == "FAILED"
