"""The same pipeline with the same params, run twice, logs identical metrics — the parallel edge
fine-tune and the parallel cluster training included.  Only what measures the machine (wall time,
energy, power, compute milliseconds) may differ."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e_support import make_project, offline_env, quick_overrides, sh, sqlite_uri
from mlflow import MlflowClient
from mlflow.entities import Run

pytestmark = pytest.mark.slow

MEASURED = re.compile(r"energy|emissions|power|duration|compute_ms|latency_ms")


def _set_flags(overrides: dict, prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += _set_flags(value, f"{prefix}{key}.")
        else:
            out += ["--set", f"{prefix}{key}={value}"]
    return out


def _metrics_by_run(client: MlflowClient, runs: list[Run], root: Run) -> dict[str, dict[str, list[float]]]:
    """path of run names below ``root`` (e.g. ``finetune/edge-invert``) → metric → logged values."""
    children: dict[str, list[Run]] = {}
    for run in runs:
        children.setdefault(run.data.tags.get("mlflow.parentRunId", ""), []).append(run)
    out: dict[str, dict[str, list[float]]] = {}
    todo = [("", root)]
    while todo:
        path, run = todo.pop()
        assert path not in out, f"two runs at {path}"
        out[path] = {
            key: [m.value for m in client.get_metric_history(run.info.run_id, key)]
            for key in run.data.metrics
            if not MEASURED.search(key)
        }
        todo += [(f"{path}/{c.info.run_name}", c) for c in children.get(run.info.run_id, [])]
    return out


def test_two_runs_log_identical_metrics(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    # the machine's own thread count (not the e2e helpers' 1), so intra-op parallelism is exercised
    env = offline_env(project, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    flags = _set_flags(quick_overrides({"hfsl": {"local_steps": 3, "edge_joins": True}}))
    for _ in range(2):
        sh([Path(env["PATH"].split(":")[0]) / "ecogen", "run", "quick", *flags], project, env, timeout=600)
    client = MlflowClient(sqlite_uri(project))
    exp = client.get_experiment_by_name("ecogen")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("ecogen.kind") == "pipeline"]
    assert len(parents) == 2
    first, second = (_metrics_by_run(client, runs, p) for p in parents)
    assert set(first) == set(second) and len(first) > 10
    for name in first:
        assert first[name] == second[name], f"{name}: metrics differ between two identical runs"
    assert any("accuracy" in metrics for metrics in first.values())
