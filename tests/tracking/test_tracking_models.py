"""Models logged by log_result load back with mlflow.pytorch and compute the same function."""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.pytorch
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from torch import nn

from ecogen.config.params import Params
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.tracking import DATA_VERSION, log_result, start_pipeline_run, track_stage
from ecogen.tracking.mlflow_log import SerializationFormat
from ecogen.workspace import Workspace

VERSION = "fedcba9876543210fedcba9876543210.dir"


def logged_models(run_id: str) -> dict[str, str]:
    """name → model id of the logged models whose source run is ``run_id``."""
    client = MlflowClient()
    exp = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models([exp], filter_string=f"source_run_id = '{run_id}'")
    return {m.name: m.model_id for m in found}


def assert_same_function(original: nn.Module, model_id: str, example: np.ndarray) -> None:
    loaded = mlflow.pytorch.load_model(f"models:/{model_id}")
    x = torch.from_numpy(np.concatenate([example, example + 1.0]))  # another batch size too
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original.eval()(x))


def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_models_round_trip_with_extra_files(
    params: Params, project: Path, workspace: Workspace, tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter.pt"
    torch.save({"w": torch.ones(2)}, adapter)
    example = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    fm, edge_model = tiny_mlp(), tiny_mlp()
    result = StageResult(
        name="finetune",
        models={"fm": ModelArtifact(fm, example)},
        children=[
            StageResult(
                name="edge-invert",
                models={"edge": ModelArtifact(edge_model, example, extra_files=[adapter])},
            )
        ],
    )
    parent = start_pipeline_run(params, "models", project)
    with track_stage(params, "finetune", project, parent, VERSION, workspace) as handle:
        (edge_run,) = log_result(handle.run_id, result, VERSION)

    stage_models = logged_models(handle.run_id)
    edge_models = logged_models(edge_run)
    assert set(stage_models) == {"fm"} and set(edge_models) == {"edge"}
    assert_same_function(fm, stage_models["fm"], example)
    assert_same_function(edge_model, edge_models["edge"], example)

    client = MlflowClient()
    outputs = client.get_run(edge_run).outputs.model_outputs
    assert [o.model_id for o in outputs] == [edge_models["edge"]]
    edge_logged = client.get_logged_model(edge_models["edge"])
    assert edge_logged.tags[DATA_VERSION] == VERSION and edge_logged.status == LoggedModelStatus.READY
    assert edge_logged.experiment_id == client.get_run(edge_run).info.experiment_id
    assert edge_logged.artifact_location.startswith((project / "mlruns" / "ecogen-test").resolve().as_uri())
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{edge_models['edge']}"))
    assert torch.load(local / "extra_files" / "adapter.pt")["w"].sum() == 2


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pickle", "pt2"])
def test_peft_wrapped_vit_round_trip(
    params: Params, project: Path, workspace: Workspace, fmt: SerializationFormat
) -> None:
    from peft import LoraConfig, get_peft_model

    from ecogen.models.vit import ViT, ViTConfig

    torch.manual_seed(0)
    vit = ViT(ViTConfig(dim=16, depth=1, heads=2))
    lora = get_peft_model(vit, LoraConfig(r=2, target_modules=["qkv", "proj", "fc1", "fc2"]))
    for name, p in lora.named_parameters():  # non-zero B: adapters must change the output
        if "lora_B" in name:
            nn.init.normal_(p, std=0.1)
    example = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with track_stage(params, f"peft-{fmt}", project, None, VERSION, workspace) as handle:
        result = StageResult(name="x", models={"edge": ModelArtifact(lora, example)})
        log_result(handle.run_id, result, VERSION, fmt)
    assert_same_function(lora, logged_models(handle.run_id)["edge"], example)
