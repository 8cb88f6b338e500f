"""`ecogen run quick` end to end: real Prefect (ephemeral API), MLflow on SQLite, DVC, CodeCarbon.

The pipeline runs once per module, as a user runs it (a subprocess in a fresh project, with the
quick pipeline shrunk by --set but every stage and every edge kept); the tests then read what it
left in the project's MLflow store, its DVC files and its DVC remote.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import TINY, make_project, offline_env, read_yaml, run_tiny, sh, sqlite_uri
from mlflow import MlflowClient
from mlflow.entities import Run

pytestmark = pytest.mark.slow

PIPELINE = "quick"
STAGES = ["prepare", "pretrain", "finetune", "hfsl", "infer"]
EDGE_STAGES = ["finetune", "hfsl", "infer"]
ROUNDS = TINY["hfsl"]["rounds"]
# Fashion-MNIST (28×28 grayscale, 10 classes) is the quick pipeline's data source
IMAGE_SHAPE, NUM_CLASSES = (1, 28, 28), 10


@dataclass
class RunTree:
    project: Path
    stdout: str
    client: MlflowClient
    experiment_id: str
    domains: list[str]
    runs: list[Run]

    @property
    def parents(self) -> list[Run]:
        return [r for r in self.runs if r.data.tags.get("ecogen.kind") == "pipeline"]

    @property
    def parent(self) -> Run:
        (parent,) = self.parents
        return parent

    def stage(self, name: str) -> Run:
        (run,) = [
            r
            for r in self.runs
            if r.data.tags.get("ecogen.kind") == "stage" and r.data.tags.get("ecogen.stage") == name
        ]
        return run

    def children(self, run: Run) -> list[Run]:
        return [r for r in self.runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, offline_process_env: None) -> RunTree:
    project = make_project(tmp_path_factory.mktemp("pipeline"))
    out = run_tiny(project, PIPELINE)

    client = MlflowClient(tracking_uri=sqlite_uri(project))
    params = read_yaml(project / "params.yaml")
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    assert experiment is not None, "the pipeline created no MLflow experiment"
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return RunTree(
        project=project,
        stdout=out.stdout,
        client=client,
        experiment_id=experiment.experiment_id,
        domains=params["data"]["domains"],
        runs=runs,
    )


def test_the_cli_reports_the_parent_run(tree: RunTree) -> None:
    match = re.search(rf"pipeline {PIPELINE} finished: MLflow run (\w+)", tree.stdout)
    assert match, tree.stdout[-3000:]
    assert match.group(1) == tree.parent.info.run_id
    assert (tree.project / "mlflow.db").is_file()
    assert (tree.project / "runs" / PIPELINE / "metrics" / "infer.json").is_file()
    # progress, not plumbing: stage progress lines are shown, Prefect's API calls are not
    assert "hfsl[" in tree.stdout and "HTTP Request" not in tree.stdout, tree.stdout[-3000:]


def test_progress_is_one_line_per_stage_step_and_no_line_repeats(tree: RunTree) -> None:
    out = tree.stdout
    for k, stage in enumerate(STAGES, start=1):
        assert f"stage {k}/{len(STAGES)}: {stage}" in out, out[-3000:]
    edges = len(tree.domains)
    assert re.search(rf"finetune epoch 1/1 \({edges} edges, mean\) .*train_loss=", out), out[-3000:]
    assert f"hfsl round {ROUNDS}/{ROUNDS} ({edges} edges, mean) accuracy=" in out, out[-3000:]
    assert "pretrain epoch 1/1 mae_loss=" in out
    # per-edge epoch and round lines are aggregated, not interleaved
    assert not re.search(r"finetune\[\w+\] epoch|hfsl\[\w+\] \w+ round", out), out[-3000:]
    lines = [re.sub(r"^\S+ ", "", line) for line in out.splitlines() if line.strip()]  # without the time
    repeated = {line: lines.count(line) for line in set(lines) if lines.count(line) > 3}
    assert not repeated, repeated
    finished = [line for line in out.splitlines() if "Finished in state" in line]
    assert finished and all(re.search(r"prefect\.\w+: \S+: Finished in state", f) for f in finished), finished
    assert not re.search(r"mlflow\.\w+: .*[Pp]ickle", out)  # models are exported: nothing pickled
    assert "Error logging to API" not in out  # the run's logs reached Prefect before its server stopped


def test_edge_epochs_were_logged_as_they_ended_once_each(tree: RunTree) -> None:
    for run in tree.children(tree.stage("finetune")):
        points = tree.client.get_metric_history(run.info.run_id, "train_loss")
        assert [m.step for m in points] == [1], points  # one epoch (TINY), logged once
        assert run.info.start_time <= points[0].timestamp <= run.info.end_time
    for run in tree.children(tree.stage("hfsl")):  # made at the edge's first round, logged each round
        points = sorted(tree.client.get_metric_history(run.info.run_id, "accuracy"), key=lambda m: m.step)
        assert [m.step for m in points] == list(range(1, ROUNDS + 1)), points
        times = [m.timestamp for m in points]
        assert times == sorted(set(times)) and run.info.start_time <= times[0], points  # as they ended
    hfsl = tree.stage("hfsl")
    mean = tree.client.get_metric_history(hfsl.info.run_id, "mean_accuracy")
    assert sorted(m.step for m in mean) == list(range(1, ROUNDS + 1)), mean  # live, not again at the end


def test_the_closing_summary_has_units_and_the_way_to_the_run(tree: RunTree) -> None:
    out = tree.stdout
    assert re.search(r"stage\s+runs\s+time \(s\)\s+accuracy\s+energy \(kWh\)\s+edge↔client / round", out), (
        out[-3000:]
    )
    for stage in STAGES:
        assert re.search(rf"^{stage}\s+1\s+[0-9.]+", out, re.M), stage
    assert re.search(r"^hfsl\s.*\s[0-9.]+ (B|kB|MB|GB)$", out, re.M), out[-3000:]  # bytes with their unit
    run, exp = tree.parent.info.run_id, tree.experiment_id
    assert f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{run}" in out
    # the runs table in the model-training view, with the pipeline's headline metrics as columns
    table = f"http://127.0.0.1:5000/#/experiments/{exp}/runs?workflowType=machine_learning"
    assert f"{table}&viewStateShareKey=ecogen-{PIPELINE}" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out
    assert " = " not in out.split("finished: MLflow run")[-1]  # no flat key = value dump


def test_the_parent_run_carries_headline_metrics_its_commit_and_its_dataset(tree: RunTree) -> None:
    parent = tree.client.get_run(tree.parent.info.run_id)
    metrics, tags = parent.data.metrics, parent.data.tags
    for key in ("hfsl.mean_accuracy", "finetune.mean_accuracy", "infer.mean_accuracy", "total_duration_s"):
        assert key in metrics, sorted(metrics)
    assert "hfsl.mean_edge_client_bytes_per_round" in metrics and metrics["total_energy_kwh"] > 0
    assert metrics["total_emissions_kg_co2eq"] > 0
    assert {a.path for a in tree.client.list_artifacts(parent.info.run_id)} == {"params.yaml", "summary.txt"}
    summary = tree.client.download_artifacts(parent.info.run_id, "summary.txt", str(tree.project / "dl"))
    assert Path(summary).read_text().startswith("stage ") and "total" in Path(summary).read_text()
    resolved = read_yaml(
        Path(tree.client.download_artifacts(parent.info.run_id, "params.yaml", str(tree.project / "dl")))
    )
    assert resolved["hfsl"]["rounds"] == ROUNDS
    stages = [tree.stage(s) for s in STAGES]
    assert metrics["total_duration_s"] == pytest.approx(sum(r.data.metrics["duration_s"] for r in stages))
    head = sh(["git", "rev-parse", "HEAD"], tree.project, offline_env(tree.project)).stdout.strip()
    assert tags["mlflow.source.git.commit"] == head and tags["mlflow.source.name"] == f"ecogen run {PIPELINE}"
    assert len(tags["ecogen.params_hash"]) == 16 and tags["mlflow.user"]
    (dataset,) = parent.inputs.dataset_inputs
    assert dataset.dataset.digest == tags["ecogen.data_version"][:36]
    assert dataset.dataset.source.endswith(f"runs/{PIPELINE}/data")
    experiment = tree.client.get_experiment(tree.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # the pipeline's saved view of the runs table (the UI's "Views" menu) selects them as columns
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.ecogen-{PIPELINE}"])
    assert view["name"] == f"{PIPELINE}: headline metrics"
    assert json.loads(view["state"])["selectedColumns"] == [f"metrics.`{k}`" for k in sorted(metrics)]


def test_one_parent_five_stages_one_edge_run_per_domain_and_stage(tree: RunTree) -> None:
    assert len(tree.parents) == 1, [r.info.run_name for r in tree.parents]
    parent = tree.parent
    assert parent.data.tags.get("ecogen.pipeline") == PIPELINE
    stages = tree.children(parent)
    assert sorted(r.data.tags.get("ecogen.stage", "") for r in stages) == sorted(STAGES)
    assert all(r.data.tags.get("ecogen.kind") == "stage" for r in stages)
    for name in STAGES:
        edges = tree.children(tree.stage(name))
        if name not in EDGE_STAGES:
            assert edges == [], name
            continue
        assert sorted(r.info.run_name for r in edges) == sorted(f"edge-{d}" for d in tree.domains), name
        assert all(r.data.tags.get("ecogen.kind") == "edge" for r in edges)
        assert sorted(r.data.tags.get("ecogen.edge", "") for r in edges) == sorted(
            f"edge-{d}" for d in tree.domains
        )
    # nothing else in the experiment: no duplicated or orphaned runs
    assert len(tree.runs) == 1 + len(STAGES) + len(EDGE_STAGES) * len(tree.domains)
    assert {r.info.status for r in tree.runs} == {"FINISHED"}


def test_every_stage_run_has_energy_carbon_and_duration(tree: RunTree) -> None:
    for name in STAGES:
        run = tree.stage(name)
        metrics = run.data.metrics
        for key in ("energy_kwh", "emissions_kg_co2eq", "duration_s"):
            assert key in metrics, f"{name}: no {key} in {sorted(metrics)}"
            assert math.isfinite(metrics[key]) and metrics[key] >= 0, (name, key, metrics[key])
        assert metrics["duration_s"] > 0, name
        # CodeCarbon really measured (offline) rather than falling back to zeros
        assert run.data.tags.get("ecogen.energy.status") == "measured", (name, run.data.tags)
        assert run.data.tags.get("ecogen.energy.hardware"), name


def test_every_edge_run_has_an_accuracy(tree: RunTree) -> None:
    for name in EDGE_STAGES:
        for run in tree.children(tree.stage(name)):
            accuracy = run.data.metrics.get("accuracy")
            assert accuracy is not None and 0.0 <= accuracy <= 1.0, (name, run.info.run_name, accuracy)


def test_hfsl_edges_have_per_round_accuracy_and_bytes(tree: RunTree) -> None:
    for run in tree.children(tree.stage("hfsl")):
        history = tree.client.get_metric_history(run.info.run_id, "accuracy")
        # one value per round at steps 1..R, once each (the final scalar is the last one)
        assert sorted(m.step for m in history) == list(range(1, ROUNDS + 1)), history
        per_round = {m.step: m.value for m in history}
        assert all(0.0 <= v <= 1.0 for v in per_round.values()), per_round
        assert run.data.metrics["accuracy"] == pytest.approx(per_round[ROUNDS])
        for key in ("edge_client_bytes_per_round", "d2d_bytes_per_round"):
            assert run.data.metrics.get(key, 0) > 0, (run.info.run_name, key, run.data.metrics)


def test_infer_edges_have_bytes_and_latency_per_request(tree: RunTree) -> None:
    for run in tree.children(tree.stage("infer")):
        for key in ("bytes_per_request", "latency_ms_per_request"):
            value = run.data.metrics.get(key)
            assert value is not None and value > 0, (run.info.run_name, key, run.data.metrics)


def test_every_run_records_the_dvc_data_version(tree: RunTree) -> None:
    dvc_file = read_yaml(tree.project / "runs" / PIPELINE / "data.dvc")
    (out,) = dvc_file["outs"]
    md5 = out["md5"]
    assert md5.endswith(".dir") and md5 != "unknown"
    versions = {
        r.info.run_name + "/" + r.info.run_id: r.data.tags.get("ecogen.data_version") for r in tree.runs
    }
    assert set(versions.values()) == {md5}, versions


def test_the_data_was_pushed_to_the_dvc_remote(tree: RunTree) -> None:
    remote = tree.project / "dvc-remote"
    assert remote.is_dir() and any(p.is_file() for p in remote.rglob("*")), "dvc-remote is empty"
    md5 = read_yaml(tree.project / "runs" / PIPELINE / "data.dvc")["outs"][0]["md5"]
    # the directory manifest itself is in the remote: `dvc pull` can restore this exact version
    assert (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_models_are_logged_for_the_fm_and_every_edge_and_load_back(tree: RunTree) -> None:
    import mlflow
    import numpy as np

    models = tree.client.search_logged_models([tree.experiment_id])
    by_name = {m.name: m for m in models}
    assert "fm" in by_name, sorted(by_name)
    edge_names = {n for n in by_name if n.startswith("edge-")}
    for domain in tree.domains:
        assert f"edge-{domain}" in edge_names, sorted(by_name)  # finetune
        assert f"edge-{domain}-hfsl" in edge_names, sorted(by_name)  # after HFSL
    run_ids = {r.info.run_id: r for r in tree.runs}
    assert by_name["fm"].source_run_id == tree.stage("pretrain").info.run_id
    for name in edge_names:
        source = run_ids[by_name[name].source_run_id]
        assert source.data.tags.get("ecogen.kind") == "edge", name

    mlflow.set_tracking_uri(sqlite_uri(tree.project))  # models:/ URIs resolve through the store
    batch = np.random.default_rng(0).integers(0, 256, (5, *IMAGE_SHAPE), dtype=np.uint8)  # raw images
    dim = int(tree.parent.data.params["model.dim"])  # the FM returns features of this width
    for name, width in (("fm", dim), (f"edge-{tree.domains[0]}-hfsl", NUM_CLASSES)):
        out = mlflow.pyfunc.load_model(f"models:/{by_name[name].model_id}").predict(batch)
        assert out.shape == (5, width) and np.isfinite(out).all(), name
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)  # the edge's class probabilities
