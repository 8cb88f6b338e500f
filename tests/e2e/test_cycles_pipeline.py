"""`ecogen run cycles` end to end (digits, two cycles): every cycle's stages are tagged runs, each
relay logs its FM's cross-domain accuracy and generated-sample grids, and cycle 1 starts from the
FM cycle 0's relay produced, its edges warm-started from their cycle-0 modules."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import make_project, offline_env, read_yaml, sh, sqlite_uri, write_yaml
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

TINY = {
    "data": {
        "source": "digits",
        "domains": ["identity", "invert"],
        "test_per_domain": 60,
        "public_pool": 300,
        "edge_labelled": 40,
        "samples_per_cluster": 60,
        "labelled_fraction": 0.25,
    },
    "model": {"patch_size": 4, "dim": 16, "depth": 2, "heads": 2, "decoder_dim": 8},
    "pretrain": {"epochs": 1},
    "peft": {"epochs": 2},
    "hfsl": {"clusters": 2, "rounds": 1, "batch_size": 4, "unlabelled_ratio": 2},
    "relay": {"cycles": 2, "epochs": 1, "public_samples": 200, "synthetic_samples": 50},
    "energy": {"enabled": False},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("cycles"))
    spec = read_yaml(project / "pipelines.yaml")
    spec["profiles"]["tiny"] = TINY
    write_yaml(project / "pipelines.yaml", spec)
    sh(["ecogen", "run", "cycles", "--profile", "tiny"], project, offline_env(project), timeout=900)
    return project


def test_each_cycle_is_tagged_and_relays_into_the_next(project: Path) -> None:
    client = MlflowClient(sqlite_uri(project))
    exp = client.get_experiment_by_name("ecogen")
    assert exp is not None
    runs = client.search_runs(
        [exp.experiment_id], "tags.`ecogen.pipeline` = 'cycles' AND tags.`ecogen.kind` = 'stage'"
    )
    by = {(r.data.tags["ecogen.stage"], r.data.tags.get("ecogen.cycle")): r for r in runs}
    for k in ("0", "1"):
        for stage in ("finetune", "hfsl", "relay"):
            assert by[(stage, k)].info.status == "FINISHED", (stage, k)
        relay = by[("relay", k)].data.metrics
        for key in (
            "fm_mean_accuracy",
            "naive_mean_accuracy",
            "best_edge_mean_accuracy",
            "upload_bytes_per_edge",
        ):
            assert key in relay
        assert relay["upload_bytes_per_edge"] < relay["fm_bytes"]
        arts = {a.path for a in client.list_artifacts(by[("relay", k)].info.run_id)}
        assert {"relay_fm_before.png", "relay_fm_after.png"} <= arts
    # cycle 1's edges re-adapted modules on the redelivered FM: measured before and after
    assert "mean_accuracy_redelivered" in by[("finetune", "1")].data.metrics
    assert "mean_accuracy_redelivered" not in by[("finetune", "0")].data.metrics
    work = project / "runs" / "cycles" / "artifacts" / "cycles"
    assert (work / "0" / "relay" / "fm.pt").is_file() and (work / "1" / "relay" / "fm.pt").is_file()
