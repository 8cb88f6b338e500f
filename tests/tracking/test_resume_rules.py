"""What `--resume` continues and what it skips, against a real SQLite MLflow store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ecogen.config.params import Params
from ecogen.pipeline import RUN_MARKER, resumable
from ecogen.tracking.resume import ResumeError, finished_stage_run, params_diff, resumable_run, upstream
from ecogen.tracking.runs import experiment_id, flatten_params


def test_params_diff_reports_changed_and_missing_configuration_only() -> None:
    current = {"hfsl.lr": "0.001", "hfsl.rounds": "4", "seed": "0"}
    logged = {"hfsl.lr": "0.0002", "seed": "0", "data_version": "abc.dir", "block_ranges": "[(0, 2)]"}
    assert params_diff(logged, current) == ["hfsl.lr: 0.0002 → 0.001", "hfsl.rounds: (absent) → 4"]
    assert params_diff({**current, "client_images": "600"}, current) == []
    # a param the run predates does not block it while it keeps its default
    assert params_diff(logged, current, defaults={"hfsl.rounds": "4"}) == ["hfsl.lr: 0.0002 → 0.001"]


def test_upstream_follows_shared_stages_trials_and_cycles() -> None:
    shared = {"ecogen.stage": "pretrain"}
    assert upstream(shared, "finetune", None, None)
    assert not upstream({"ecogen.stage": "finetune"}, "pretrain", None, None)
    assert upstream(shared, "hfsl", ("c1", 0), None)  # every trial reads the shared stages
    trial = {"ecogen.stage": "hfsl", "ecogen.row": "c1", "ecogen.replicate": "0"}
    assert not upstream(trial, "hfsl", ("c2", 0), None)  # trials are independent
    relay0 = {"ecogen.stage": "relay", "ecogen.cycle": "0"}
    assert upstream(relay0, "finetune", None, 1)  # cycle 1 starts from cycle 0's relayed FM
    assert not upstream(relay0, "finetune", None, 0)
    assert upstream({"ecogen.stage": "finetune", "ecogen.cycle": "0"}, "relay", None, 0)
    assert not upstream(relay0, "pretrain", None, None)


class Store:
    def __init__(self, project: Path, params: Params) -> None:
        uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
        self.client = MlflowClient(uri)
        self.exp = experiment_id(self.client, params.tracking.experiment, uri, project)
        self.clock = 1_700_000_000_000

    def run(self, tags: dict[str, str], params: Params | None, status: str) -> str:
        self.clock += 1000
        rid = self.client.create_run(self.exp, start_time=self.clock).info.run_id
        values = flatten_params(params) if params is not None else {}
        self.client.log_batch(
            rid,
            params=[Param(k, v) for k, v in values.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            self.client.set_terminated(rid, status)
        return rid

    def pipeline(self, name: str, params: Params, status: str, profile: str | None = "none") -> str:
        tags = {"ecogen.kind": "pipeline", "ecogen.pipeline": name}
        if profile is not None:
            tags["ecogen.profile"] = profile
        return self.run(tags, params, status)

    def stage(self, parent: str, stage: str, params: Params, status: str = "FINISHED", **tags: str) -> str:
        base = {MLFLOW_PARENT_RUN_ID: parent, "ecogen.kind": "stage", "ecogen.stage": stage}
        return self.run({**base, **tags}, params, status)


def test_resumable_run_is_the_newest_run_of_the_profile_if_unfinished(project: Path, params: Params) -> None:
    store = Store(project, params)
    with pytest.raises(ResumeError, match="it never ran"):
        resumable_run(params, "p1", project, None)
    store.pipeline("p1", params, "FAILED", profile=None)  # before profiles were recorded: never resumed
    with pytest.raises(ResumeError, match="it never ran"):
        resumable_run(params, "p1", project, None)
    failed = store.pipeline("p1", params, "FAILED")
    assert resumable_run(params, "p1", project, None).info.run_id == failed
    assert resumable_run(params, "p1", project, "none").info.run_id == failed
    with pytest.raises(ResumeError, match="profile cpu"):
        resumable_run(params, "p1", project, "cpu")
    other = params.model_copy(update={"seed": 7})
    with pytest.raises(ResumeError, match="seed: 0 → 7"):
        resumable_run(other, "p1", project, None)
    finished = store.pipeline("p1", params, "FINISHED")
    with pytest.raises(ResumeError, match=f"its newest run {finished} is FINISHED"):
        resumable_run(params, "p1", project, None)


def test_a_stage_is_skipped_only_if_nothing_it_reads_ran_after_it(project: Path, params: Params) -> None:
    store = Store(project, params)
    parent = store.pipeline("p2", params, "RUNNING")
    prepare = store.stage(parent, "prepare", params)
    first_pretrain = store.stage(parent, "pretrain", params)
    finetune = store.stage(parent, "finetune", params)
    trial = store.stage(parent, "hfsl", params, **{"ecogen.row": "a", "ecogen.replicate": "0"})
    store.stage(parent, "hfsl", params, "FAILED", **{"ecogen.row": "b", "ecogen.replicate": "0"})

    def found(stage: str, trial: tuple[str, int] | None = None) -> str | None:
        run = finished_stage_run(parent, stage, params, trial, None)
        return run.info.run_id if run else None

    assert [found("prepare"), found("pretrain"), found("finetune")] == [prepare, first_pretrain, finetune]
    assert found("hfsl", ("a", 0)) == trial and found("hfsl", ("b", 0)) is None
    assert found("hfsl") is None  # the trial runs are not the shared stage's
    assert finished_stage_run(parent, "prepare", params.model_copy(update={"seed": 3}), None, None) is None
    rerun = store.stage(parent, "pretrain", params)  # pretrain ran again: all after it must too
    assert found("pretrain") in (first_pretrain, rerun) and found("prepare") == prepare
    assert found("finetune") is None and found("hfsl", ("a", 0)) is None


def test_resume_needs_the_runs_files_and_a_dead_process(project: Path, params: Params) -> None:
    store = Store(project, params)
    run_id = store.pipeline("p3", params, "RUNNING")
    marker = project / "runs" / "p3" / RUN_MARKER
    with pytest.raises(ResumeError, match="holds the files of no run's"):
        resumable("p3", params, project, None)
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"run_id": "0123abc", "pid": 1, "host": "elsewhere"}))
    with pytest.raises(ResumeError, match="holds the files of run 0123abc"):
        resumable("p3", params, project, None)
    # a live process that looks like ecogen (its argv says so) still owns the run
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ecogen"])
    try:
        marker.write_text(json.dumps({"run_id": run_id, "pid": proc.pid, "host": socket.gethostname()}))
        with pytest.raises(ResumeError, match=f"still being run by process {proc.pid}"):
            resumable("p3", params, project, None)
    finally:
        proc.kill()
        proc.wait()
    assert resumable("p3", params, project, None) == run_id  # its process is gone
