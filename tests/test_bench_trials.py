"""benchmarks/trials.py on digits: trials in turn and side by side, and twins agree side by side."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from benchmarks.trials import main
from ecogen.config.load import load_params, load_pipelines
from ecogen.stages.registry import run_stage
from ecogen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "accelerator": "cpu",
    "data": {
        "source": "digits",
        "domains": ["identity"],
        "test_per_domain": 40,
        "public_pool": 200,
        "edge_labelled": 30,
        "samples_per_cluster": 48,
        "labelled_fraction": 0.25,
    },
    "model": {"patch_size": 2, "dim": 16, "depth": 2, "heads": 2, "decoder_dim": 8},
    "pretrain": {"epochs": 1, "batch_size": 64},
    "peft": {"epochs": 1, "lora_rank": 2, "batch_size": 16},
    "hfsl": {"clusters": 2, "rounds": 2, "batch_size": 4, "unlabelled_ratio": 2, "local_steps": 3},
    "energy": {"enabled": False},
}


def test_trials_side_by_side_report_both_ways_and_twins_agree(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    rows = {"a": {}, "b": {}}  # the same params: twins, whatever thread runs them
    spec = {"stages": ["prepare", "pretrain", "finetune", "hfsl"], "overrides": TINY}
    spec["trials"] = {"stages": ["hfsl"], "rows": rows, "parallel": 2}
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"default": "exp", "pipelines": {"exp": spec}}))
    overrides = load_pipelines(tmp_path / "pipelines.yaml").pipelines["exp"].overrides
    params = load_params(tmp_path / "params.yaml", overrides)
    ws = Workspace(tmp_path / "runs" / "exp")
    for stage in ("prepare", "pretrain", "finetune"):
        run_stage(stage, params, ws)
    out = tmp_path / "trials.json"
    argv = ["--project", str(tmp_path), "--pipeline", "exp", "--profile", "none"]
    result = main([*argv, "--trial", "a:0", "--trial", "b:0", "--out", str(out)])
    trials = result["trials"]
    assert set(trials) == {"a-r0", "b-r0"} and result["speedup"] > 0
    assert trials["a-r0"]["at_once"]["accuracy"] == trials["b-r0"]["at_once"]["accuracy"]
    assert trials["a-r0"]["in_turn"]["accuracy"] == trials["b-r0"]["in_turn"]["accuracy"]
    assert out.read_text().startswith("{")
