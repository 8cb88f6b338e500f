"""Run tree, data version, energy and failure handling against a real SQLite MLflow store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ecogen.config.params import Params
from ecogen.stages.result import StageResult
from ecogen.tracking import (
    DATA_VERSION,
    finish_run,
    set_data_version,
    start_pipeline_run,
    track_stage,
)
from ecogen.workspace import Workspace

VERSION = "0123456789abcdef0123456789abcdef.dir"
ENERGY_METRICS = ("energy_kwh", "emissions_kg_co2eq", "duration_s")


def steps(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def busy(n: int = 200_000) -> int:
    return sum(i * i for i in range(n))


def test_pipeline_stage_and_edge_runs(
    params: Params, project: Path, workspace: Workspace, tmp_path: Path
) -> None:
    plot = tmp_path / "loss.csv"
    plot.write_text("step,loss\n1,3.0\n")
    parent = start_pipeline_run(params, "quick", project, tags={"ecogen.trigger": "test"})
    set_data_version(parent, VERSION)
    with track_stage(params, "pretrain", project, parent, VERSION, workspace) as pretrain:
        busy()
        history = {"mae_loss": [3.0, 2.0, 1.0]}
        facts = {"accelerator": "cpu", "n_params": 1234, "seed": 0}  # accelerator clashes, seed equals
        pretrain.log(
            StageResult(
                name="pretrain", metrics={"loss": 0.5}, history=history, params=facts, artifacts=[plot]
            )
        )
    with track_stage(params, "finetune", project, parent, VERSION, workspace) as finetune:
        busy()
        edge = StageResult(
            name="edge-identity",
            metrics={"accuracy": 0.7},
            history={"accuracy": [0.2, 0.5]},
            params={"domain": "identity"},
        )
        children = finetune.log(StageResult(name="finetune", metrics={"accuracy": 0.6}, children=[edge]))
    finish_run(parent, "FINISHED")

    client = MlflowClient()
    runs = {rid: client.get_run(rid) for rid in [parent, pretrain.run_id, finetune.run_id, *children]}
    assert len(children) == 1
    p, s1, s2, e = runs.values()

    assert p.info.run_name == "quick" and p.info.status == "FINISHED"
    assert p.data.tags["ecogen.kind"] == "pipeline" and p.data.tags["ecogen.pipeline"] == "quick"
    assert p.data.tags["ecogen.trigger"] == "test"
    assert (
        p.data.params["hfsl.rounds"] == str(Params().hfsl.rounds) and p.data.params["data_version"] == VERSION
    )

    for stage_run, name in ((s1, "pretrain"), (s2, "finetune")):
        assert stage_run.data.tags[MLFLOW_PARENT_RUN_ID] == parent
        assert stage_run.data.tags["ecogen.kind"] == "stage"
        assert stage_run.data.tags["ecogen.stage"] == name
        assert stage_run.data.tags["ecogen.pipeline"] == "quick"
        assert stage_run.info.status == "FINISHED"
        assert stage_run.info.experiment_id == p.info.experiment_id
        for key in ENERGY_METRICS:
            assert stage_run.data.metrics[key] >= 0
        assert stage_run.data.metrics["duration_s"] > 0
        assert stage_run.data.tags["ecogen.energy.status"] == "measured"
        assert "CPU" in stage_run.data.tags["ecogen.energy.hardware"]
        assert stage_run.data.tags["ecogen.energy.tracking_mode"] in ("machine", "process")

    assert e.data.tags[MLFLOW_PARENT_RUN_ID] == finetune.run_id
    assert e.data.tags["ecogen.kind"] == "edge" and e.data.tags["ecogen.edge"] == "edge-identity"
    assert e.info.run_name == "edge-identity" and e.info.status == "FINISHED"
    assert e.data.params["domain"] == "identity"
    assert e.data.metrics["accuracy"] == 0.7

    for run in runs.values():
        assert run.data.tags[DATA_VERSION] == VERSION

    assert s1.data.params["accelerator"] == "auto" and s1.data.params["result.accelerator"] == "cpu"
    assert s1.data.params["n_params"] == "1234" and "result.seed" not in s1.data.params
    assert [a.path for a in client.list_artifacts(pretrain.run_id)] == ["loss.csv"]
    assert steps(client, pretrain.run_id, "mae_loss") == [(1, 3.0), (2, 2.0), (3, 1.0)]
    assert steps(client, children[0], "accuracy") == [(1, 0.2), (2, 0.5), (2, 0.7)]
    assert steps(client, pretrain.run_id, "loss") == [(0, 0.5)]
    assert (workspace.root / "emissions" / "emissions.csv").is_file()
    experiment = client.get_experiment(p.info.experiment_id)
    assert experiment.artifact_location == (project / "mlruns" / "ecogen-test").resolve().as_uri()


def test_failing_stage_is_failed_and_still_measured(
    params: Params, project: Path, workspace: Workspace
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with track_stage(params, "relay", project, None, VERSION, workspace) as handle:
            busy()
            raise RuntimeError("boom")
    run = MlflowClient().get_run(handle.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["ecogen.error"] == "RuntimeError: boom"
    for key in ENERGY_METRICS:
        assert run.data.metrics[key] >= 0
    assert handle.energy is not None and handle.energy.energy_kwh >= 0


def test_standalone_stage_run_as_dvc_repro_uses(params: Params, project: Path, workspace: Workspace) -> None:
    with track_stage(params, "prepare", project, None, None, workspace) as handle:
        pass
    set_data_version(handle.run_id, VERSION)
    run = MlflowClient().get_run(handle.run_id)
    assert MLFLOW_PARENT_RUN_ID not in run.data.tags
    assert run.data.tags["ecogen.kind"] == "stage"
    assert run.data.tags[DATA_VERSION] == VERSION
    assert run.data.params["data_version"] == VERSION
    assert run.data.params["peft.method"] == "lora"


def test_energy_disabled_logs_duration_only(params: Params, project: Path, workspace: Workspace) -> None:
    off = params.model_copy(update={"energy": params.energy.model_copy(update={"enabled": False})})
    with track_stage(off, "inference", project, None, VERSION, workspace) as handle:
        pass
    run = MlflowClient().get_run(handle.run_id)
    assert run.data.tags["ecogen.energy.status"] == "disabled"
    assert "duration_s" in run.data.metrics and "energy_kwh" not in run.data.metrics
    assert not (workspace.root / "emissions").exists()


def test_broken_meter_does_not_fail_the_stage(params: Params, project: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "emissions").write_text("a file where CodeCarbon's output folder should be")
    with track_stage(params, "pretrain", project, None, VERSION, Workspace(root)) as handle:
        pass
    run = MlflowClient().get_run(handle.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["ecogen.energy.status"].startswith("unmeasured: start failed")
    assert run.data.metrics["energy_kwh"] == 0.0


def test_concurrent_stages_in_threads(params: Params, project: Path, workspace: Workspace) -> None:
    parent = start_pipeline_run(params, "parallel", project)

    def stage(name: str) -> str:
        with track_stage(params, name, project, parent, VERSION, workspace) as handle:
            busy()
            edges = [StageResult(name=f"edge-{i}", metrics={"accuracy": 0.1 * i}) for i in range(2)]
            handle.log(StageResult(name=name, history={"loss": [2.0, 1.0]}, children=edges))
        return handle.run_id

    with ThreadPoolExecutor(max_workers=2) as pool:
        run_ids = list(pool.map(stage, ["hfsl-a", "hfsl-b"]))
    finish_run(parent)

    client = MlflowClient()
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["ecogen.energy.status"] == "measured"
        assert run.data.metrics["energy_kwh"] >= 0
        kids = client.search_runs(
            [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
        )
        assert sorted(k.data.tags["ecogen.edge"] for k in kids) == ["edge-0", "edge-1"]


def test_the_experiment_opens_in_the_model_training_view(params: Params, project: Path) -> None:
    from ecogen.tracking.runs import EXPERIMENT_KIND, MODEL_TRAINING, tracking_client

    client, exp_id = tracking_client(params, project)
    assert client.get_experiment(exp_id).tags[EXPERIMENT_KIND] == MODEL_TRAINING
    client.delete_experiment_tag(exp_id, EXPERIMENT_KIND)  # one made before the tag existed
    assert tracking_client(params, project)[1] == exp_id
    assert client.get_experiment(exp_id).tags[EXPERIMENT_KIND] == MODEL_TRAINING
