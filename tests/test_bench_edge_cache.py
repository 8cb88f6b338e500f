"""benchmarks/edge_cache.py on a fresh ViT and random images: figures that add up, logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from benchmarks.edge_cache import main

PIPELINES = "default: tiny\npipelines:\n  tiny:\n    stages: [prepare, pretrain, finetune, hfsl, infer]\n"


def test_replay_with_and_without_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the project's own store
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    (tmp_path / "pipelines.yaml").write_text(PIPELINES)
    out = tmp_path / "edge.json"
    argv = [
        "--fresh",
        "--project",
        str(tmp_path),
        "--requests",
        "300",
        "--catalogue",
        "40",
        "--capacity",
        "20",
    ]
    assert main([*argv, "--out", str(out), "--mlflow"]) == 0
    result = json.loads(out.read_text())
    stats = result["cache_stats"]
    assert stats["hits"] + stats["misses"] == 300 and stats["size"] == 20
    assert stats["evictions"] == stats["misses"] - 20
    assert result["cache"]["hit_rate"] == pytest.approx(stats["hits"] / 300)
    assert result["hit_rate_by_capacity"]["1000"] >= result["cache"]["hit_rate"]  # the whole catalogue fits
    assert result["hits"]["exact_hit_agreement"] == 1.0  # a hit answers as the chain does
    assert result["cache"]["p50_ms"] < result["no_cache"]["p50_ms"]
    assert result["cache"]["energy_mj_per_request"] < result["no_cache"]["energy_mj_per_request"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`ecogen.kind` = 'edge-cache'"
    )
    assert len(runs) == 1
    assert runs[0].data.metrics["cache/hit_rate"] == pytest.approx(result["cache"]["hit_rate"])
    assert runs[0].data.params["requests"] == "300"
