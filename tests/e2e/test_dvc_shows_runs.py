"""`dvc metrics show` and `dvc plots show` after `ecogen run`: the run's few numbers per stage and
its PNGs (dvc.yaml's top-level metrics: and plots:, ecogen/versioning/shown.py), in a fresh git +
DVC project; `dvc repro`'s side is checked by test_dvc_repro.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import ROOT, make_project, offline_env, read_yaml, sh

pytestmark = pytest.mark.slow  # about 45 s on 2 cores: a Prefect server and five stages

# The quick pipeline on sklearn's 8×8 digits, as small as it runs.
TINY_DIGITS = {
    "data.source": "digits",
    "data.public_pool": 300,
    "data.edge_labelled": 100,
    "data.samples_per_cluster": 100,
    "data.test_per_domain": 100,
    "model.dim": 32,
    "model.depth": 2,
    "model.heads": 2,
    "pretrain.epochs": 2,
    "peft.epochs": 3,
    "hfsl.rounds": 2,
}


def test_dvc_lists_the_metrics_and_plots_of_the_last_ecogen_run(
    tmp_path: Path, offline_process_env: None
) -> None:
    project = make_project(tmp_path / "project")
    env = offline_env(project)
    sh(["dvc", "init", "-q"], project, env)
    sh(["git", "add", "-A"], project, env)
    sh(["git", "commit", "-q", "-m", "the project"], project, env)
    stale = project / "metrics" / "dvc" / "relay.json"  # an earlier run's stage that quick has not
    stale.parent.mkdir(parents=True)
    stale.write_text('{"accuracy": 0.5}\n')

    sets = [f"--set={key}={value}" for key, value in TINY_DIGITS.items()]
    sh(["ecogen", "run", "quick", *sets], project, env, timeout=300)
    stages = read_yaml(ROOT / "pipelines.yaml")["pipelines"]["quick"]["stages"]
    run_metrics = project / "runs" / "quick" / "metrics"

    shown = sh(["dvc", "metrics", "show", "--json"], project, env, merge_stderr=False)
    assert "failed to load" not in shown.stderr, shown.stderr
    (rev,) = json.loads(shown.stdout).values()
    assert "error" not in rev, rev
    files = {Path(f).as_posix(): result for f, result in rev["data"].items()}
    assert set(files) == {f"metrics/dvc/{s}.json" for s in stages}, files
    assert not [f for f, result in files.items() if "error" in result], files
    hfsl = json.loads((run_metrics / "hfsl.json").read_text())
    assert files["metrics/dvc/hfsl.json"]["data"]["accuracy"] == hfsl["mean_accuracy"]
    infer = json.loads((run_metrics / "infer.json").read_text())
    assert files["metrics/dvc/infer.json"]["data"]["accuracy"] == infer["mean_accuracy"]

    plots = json.loads(sh(["dvc", "plots", "show", "--json"], project, env, merge_stderr=False).stdout)
    pngs = {Path(p).name for p in (project / "runs" / "quick" / "plots").glob("*.png")}
    assert {"fm_reconstructions.png", "hfsl_accuracy.png"} <= pngs
    found = {
        Path(name).name for name, images in plots["data"].items() if name.startswith("plots/dvc/") and images
    }
    assert found == pngs, plots
    # DVC fails to load only the report's plots (no `ecogen report` here)
    assert {e["name"].split("/")[0] for e in plots.get("errors", [])} <= {"reports"}, plots["errors"]

    # no stage outputs them: `dvc status` (every stage new here: no code folders to depend on)
    # does not name them
    status = sh(["dvc", "status"], project, env).stdout
    assert "metrics/dvc" not in status and "plots/dvc" not in status, status
