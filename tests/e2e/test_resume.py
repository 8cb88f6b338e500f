"""`ecogen run P --resume` end to end: an experiment pipeline interrupted in its second trial
continues in the same MLflow run, without redoing the shared stages or the finished trial.

The interruption is made after a complete run by rewriting MLflow's record the way a killed
process leaves it (pipeline and trial runs RUNNING) and removing the trial's outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from e2e_support import make_project, offline_env, quick_overrides, read_yaml, sh, sqlite_uri, write_yaml
from mlflow import MlflowClient
from mlflow.entities import Run

pytestmark = pytest.mark.slow

NAME = "e2eresume"


def _runs(client: MlflowClient, exp_id: str, kind: str) -> list[Run]:
    query = f"tags.`ecogen.pipeline` = '{NAME}' AND tags.`ecogen.kind` = '{kind}'"
    return list(client.search_runs([exp_id], query, max_results=1000))


def test_resume_reruns_only_what_did_not_finish(tmp_path: Path, offline_process_env: None) -> None:
    project = make_project(tmp_path / "project")
    spec = read_yaml(project / "pipelines.yaml")
    spec["pipelines"][NAME] = {
        "description": "e2e: quick, two trials of the hfsl stage",
        "stages": ["prepare", "pretrain", "finetune", "hfsl"],
        "overrides": quick_overrides({"hfsl": {"rounds": 1}}),
        "trials": {"stages": ["hfsl"], "replicates": 1, "rows": {"a": {}, "b": {"hfsl": {"rounds": 2}}}},
    }
    write_yaml(project / "pipelines.yaml", spec)
    env = offline_env(project)
    sh(["ecogen", "run", NAME], project, env, timeout=600)

    client = MlflowClient(tracking_uri=sqlite_uri(project))
    experiment = client.get_experiment_by_name(read_yaml(project / "params.yaml")["tracking"]["experiment"])
    assert experiment is not None
    exp_id = experiment.experiment_id
    (pipeline,) = _runs(client, exp_id, "pipeline")
    stages = _runs(client, exp_id, "stage")
    (trial_b,) = [r for r in stages if r.data.tags.get("ecogen.trial") == "b-r0"]
    # what a process killed during trial b leaves behind
    client.update_run(pipeline.info.run_id, status="RUNNING")
    client.update_run(trial_b.info.run_id, status="RUNNING")
    shutil.rmtree(project / "runs" / NAME / "metrics" / "trials" / "b-r0")

    out = sh(["ecogen", "run", NAME, "--resume"], project, env, timeout=600).stdout
    for done in ("prepare finished", "pretrain finished", "finetune finished", "hfsl[a-r0] finished"):
        assert f"resume: {done} in run" in out, out[-3000:]
    assert "resume: hfsl[b-r0]" not in out

    assert [r.info.run_id for r in _runs(client, exp_id, "pipeline")] == [pipeline.info.run_id]
    assert client.get_run(pipeline.info.run_id).info.status == "FINISHED"
    after = _runs(client, exp_id, "stage")
    assert len(after) == len(stages) + 1  # one new run: trial b's hfsl
    b_runs = {r.info.run_id: r.info.status for r in after if r.data.tags.get("ecogen.trial") == "b-r0"}
    assert b_runs.pop(trial_b.info.run_id) == "KILLED"  # the interrupted attempt, marked as such
    assert list(b_runs.values()) == ["FINISHED"]
    assert (project / "runs" / NAME / "metrics" / "trials" / "b-r0" / "hfsl.json").is_file()

    # nothing left to resume; and a resume with other params is refused before anything runs
    nothing = sh(["ecogen", "run", NAME, "--resume"], project, env, timeout=120, check=False)
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stdout and "FINISHED" in nothing.stdout
    client.update_run(pipeline.info.run_id, status="FAILED")
    other = sh(
        ["ecogen", "run", NAME, "--resume", "--set", "hfsl.lr=0.001"], project, env, timeout=120, check=False
    )
    assert other.returncode == 2 and "hfsl.lr: 0.003 → 0.001" in other.stdout, other.stdout[-2000:]
    assert len(_runs(client, exp_id, "stage")) == len(after)

    # a stage that has to run again (its outputs are gone) makes everything after it run again
    (project / "runs" / NAME / "metrics" / "pretrain.json").unlink()
    out = sh(["ecogen", "run", NAME, "--resume"], project, env, timeout=600).stdout
    assert "resume: prepare finished" in out and "resume: pretrain" not in out, out[-3000:]
    assert "resume: finetune" not in out and "resume: hfsl" not in out
    assert len(_runs(client, exp_id, "stage")) == len(after) + 4  # pretrain, finetune, 2 trials
    assert client.get_run(pipeline.info.run_id).info.status == "FINISHED"
