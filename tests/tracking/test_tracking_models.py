"""Models logged by log_result are pyfuncs a user can take away: they load and serve where
``ecogen`` cannot be imported, take raw uint8 images, and compute what the modules compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from peft import LoraConfig, get_peft_model
from torch import nn

from benchmarks.agents import free_port, healthy, start_process, stop_process
from ecogen.config.params import Params
from ecogen.data.prepared import to_float
from ecogen.models.export import PooledFeatures
from ecogen.models.vit import ViT, ViTConfig
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.tracking import DATA_VERSION, log_result, start_pipeline_run, track_stage
from ecogen.workspace import Workspace

VERSION = "fedcba9876543210fedcba9876543210.dir"
CFG = ViTConfig(dim=16, depth=1, heads=2)  # 28×28, one channel, ten classes

# Loads each model URI in argv[3:] with plain mlflow.pyfunc and predicts on the images in argv[1]
# (and on them without their channel axis, through the python model); `import ecogen` fails.
NO_ECOGEN = """
import sys

class NoEcogen:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "ecogen":
            raise ImportError(f"{name}: ecogen is not installed here")

sys.meta_path.insert(0, NoEcogen())
import mlflow
import numpy as np

images = np.load(sys.argv[1])
out = {}
for i, uri in enumerate(sys.argv[3:]):
    model = mlflow.pyfunc.load_model(uri)
    out[f"nchw{i}"] = model.predict(images)
    out[f"nhw{i}"] = model.unwrap_python_model().predict(None, images[:, 0])
assert not any(m.partition(".")[0] == "ecogen" for m in sys.modules), "ecogen was imported"
np.savez(sys.argv[2], **out)
"""


def logged_models(run_id: str) -> dict[str, str]:
    """name → model id of the logged models whose source run is ``run_id``."""
    client = MlflowClient()
    exp = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models([exp], filter_string=f"source_run_id = '{run_id}'")
    return {m.name: m.model_id for m in found}


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)


@dataclass
class Logged:
    fm: PooledFeatures
    edge: nn.Module  # a peft LoRA model
    fm_id: str
    edge_id: str
    edge_run: str


@pytest.fixture(scope="module")
def logged(params: Params, project: Path, tmp_path_factory: pytest.TempPathFactory) -> Logged:
    """A pretrain-like stage model (the FM's features) and an edge's LoRA classifier, logged once."""
    torch.manual_seed(0)
    fm = PooledFeatures(ViT(CFG))
    edge = get_peft_model(ViT(CFG), LoraConfig(r=2, target_modules=["qkv", "proj", "fc1", "fc2"]))
    for name, p in edge.named_parameters():  # non-zero B: adapters must change the output
        if "lora_B" in name:
            nn.init.normal_(p, std=0.1)
    tunable = tmp_path_factory.mktemp("edge") / "tunable.pt"
    torch.save({"w": torch.ones(2)}, tunable)
    result = StageResult(
        name="finetune",
        models={"fm": ModelArtifact(fm, images(2, 0), output="features")},
        children=[
            StageResult(name="edge-invert", models={"edge": ModelArtifact(edge, images(2, 1), [tunable])})
        ],
    )
    parent = start_pipeline_run(params, "models", project)
    workspace = Workspace(root=project / "runs" / "models")
    with track_stage(params, "finetune", project, parent, VERSION, workspace) as handle:
        (edge_run,) = log_result(handle.run_id, result, VERSION)
    fm_id = logged_models(handle.run_id)["fm"]
    (edge_id,) = logged_models(edge_run).values()
    return Logged(fm, edge, fm_id, edge_id, edge_run)


def expected(module: nn.Module, raw: np.ndarray, softmax: bool) -> torch.Tensor:
    """What the in-process module computes on these images, given as floats in [-1, 1]."""
    with torch.no_grad():
        out = module.eval()(to_float(torch.from_numpy(raw)))
    return out.softmax(-1) if softmax else out


def test_models_load_and_predict_without_ecogen(logged: Logged, tmp_path: Path) -> None:
    raw = images(5, 2)
    np.save(tmp_path / "images.npy", raw)
    uris = [f"models:/{logged.fm_id}", f"runs:/{logged.edge_run}/edge"]
    env = {"MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}  # models:/ and runs:/ resolve through it
    done = subprocess.run(
        [sys.executable, "-c", NO_ECOGEN, "images.npy", "out.npz", *uris],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    features, probabilities = expected(logged.fm, raw, False), expected(logged.edge, raw, True)
    assert features.shape == (5, CFG.dim) and probabilities.shape == (5, CFG.num_classes)
    torch.testing.assert_close(torch.from_numpy(out["nchw0"]), features)
    torch.testing.assert_close(torch.from_numpy(out["nchw1"]), probabilities)
    np.testing.assert_array_equal(out["nhw0"], out["nchw0"])
    np.testing.assert_array_equal(out["nhw1"], out["nchw1"])
    # exporting merged a copy: the edge model keeps its adapters
    assert any("lora_B" in name for name, _ in logged.edge.named_parameters())


def test_signature_says_uint8_images_and_the_example_is_raw(logged: Logged) -> None:
    info = mlflow.models.get_model_info(f"models:/{logged.edge_id}")
    signature = info.signature
    assert signature is not None
    (spec,) = signature.inputs.inputs
    assert spec.type == np.dtype(np.uint8) and spec.shape == (-1, 1, 28, 28)
    (out,) = signature.outputs.inputs
    assert out.name == "probabilities" and out.type == np.dtype(np.float32) and out.shape == (-1, 10)
    fm_signature = mlflow.models.get_model_info(f"models:/{logged.fm_id}").signature
    assert fm_signature is not None and fm_signature.outputs.inputs[0].name == "features"
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{logged.edge_id}"))
    example = np.array(json.loads((local / "input_example.json").read_text()))
    assert np.array_equal(example, images(2, 1))


def test_logged_model_keeps_the_run_link_and_the_extra_files(logged: Logged, project: Path) -> None:
    client = MlflowClient()
    outputs = client.get_run(logged.edge_run).outputs.model_outputs
    assert [o.model_id for o in outputs] == [logged.edge_id]
    edge = client.get_logged_model(logged.edge_id)
    assert edge.tags[DATA_VERSION] == VERSION and edge.status == LoggedModelStatus.READY
    assert edge.experiment_id == client.get_run(logged.edge_run).info.experiment_id
    assert edge.artifact_location.startswith((project / "mlruns" / "ecogen-test").resolve().as_uri())
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{logged.edge_id}"))
    assert torch.load(local / "artifacts" / "tunable.pt")["w"].sum() == 2


@pytest.mark.slow
def test_mlflow_models_serve_answers_raw_images(logged: Logged, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    serve = [
        str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", f"models:/{logged.edge_id}",
        "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1",
    ]  # fmt: skip
    raw = images(3, 3)
    with (tmp_path / "serve.log").open("w") as log:
        server = start_process(serve, tmp_path, env, log)
    try:
        _wait_for_ping(f"http://127.0.0.1:{port}/ping", server, tmp_path / "serve.log")
        reply = httpx.post(
            f"http://127.0.0.1:{port}/invocations", json={"inputs": raw.tolist()}, timeout=30, trust_env=False
        )
        assert reply.status_code == 200, reply.text
        got = torch.tensor(reply.json()["predictions"], dtype=torch.float32)
        torch.testing.assert_close(got, expected(logged.edge, raw, True))
    finally:
        stop_process(server)


def _wait_for_ping(url: str, server: subprocess.Popen[str], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {server.returncode}\n{log.read_text()[-3000:]}")
        if healthy(url):
            return
        time.sleep(0.5)
    pytest.fail(f"mlflow models serve did not answer {url} in {timeout:.0f} s\n{log.read_text()[-3000:]}")
