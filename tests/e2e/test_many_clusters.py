"""A thousand clusters per edge, five a round, through `ecogen run` (real Prefect and MLflow).

`prepare` writes one file per cluster; the hfsl stage draws five clusters a round, so its
edge↔client bytes are those of five clusters, and the run records how many trained per round.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import make_project, offline_env, read_yaml, sh, sqlite_uri, write_yaml
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

CLUSTERS, PER_ROUND = 1000, 5
OVERRIDES = {
    "data": {
        "domains": ["identity"],
        "test_per_domain": 200,
        "public_pool": 2000,
        "edge_labelled": 200,
        "samples_per_cluster": 20,
    },
    "model": {"dim": 32, "depth": 2, "heads": 2},
    "pretrain": {"epochs": 1},
    "peft": {"epochs": 1},
    "hfsl": {"clusters": CLUSTERS, "clusters_per_round": PER_ROUND, "rounds": 2},
}


def test_a_thousand_clusters_five_a_round(tmp_path: Path, offline_process_env: None) -> None:
    project = make_project(tmp_path / "project")
    pipelines = read_yaml(project / "pipelines.yaml")
    pipelines["pipelines"]["many"] = {
        "stages": ["prepare", "pretrain", "finetune", "hfsl"],
        "overrides": OVERRIDES,
    }
    write_yaml(project / "pipelines.yaml", pipelines)
    env = offline_env(project)
    sh(["git", "add", "-A"], project, env)
    sh(["git", "commit", "-q", "-m", "the project"], project, env)
    sh(["ecogen", "run", "many"], project, env, timeout=600)

    clusters = sorted((project / "runs" / "many" / "data" / "identity").glob("cluster_*.pt"))
    assert len(clusters) == CLUSTERS  # one file per cluster, read when drawn

    client = MlflowClient(tracking_uri=sqlite_uri(project))
    experiments = [e.experiment_id for e in client.search_experiments()]
    [hfsl] = client.search_runs(experiments, "tags.`ecogen.stage` = 'hfsl' and tags.`ecogen.kind` = 'stage'")
    assert hfsl.info.status == "FINISHED"
    trained = [m.value for m in client.get_metric_history(hfsl.info.run_id, "mean_clusters_trained")]
    assert trained == [PER_ROUND, PER_ROUND]  # per round
    m = hfsl.data.metrics
    # edge↔client: each drawn cluster's tunable modules down and back up, nothing for the other 995
    assert m["mean_edge_client_bytes_per_round"] == 2 * PER_ROUND * m["mean_tunable_bytes"]
