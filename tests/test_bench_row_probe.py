"""benchmarks/row_probe.py on a tiny digits project, with the faults pipeline's DP rows: the hfsl
stage logs what each DP mechanism spent — DP-SGD the ε the accountant gives for the steps each
cluster took, at most the target and close to it; central DP and the upload noise their σ and ε
over the rounds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from test_bench_trials import TINY  # tests/ is on the path of its modules

from benchmarks.row_probe import main
from ecogen.config.load import load_params, load_pipelines
from ecogen.stages.registry import run_stage
from ecogen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
DP = {"dp_epsilon": 8.0, "dp_delta": 1e-5}


def test_each_dp_row_reports_its_epsilon(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    rows = {
        "clean": {},
        "dp-eps8": {"hfsl": DP},
        "dp-sgd-eps8": {"hfsl": {**DP, "dp_mechanism": "dp_sgd"}},
        "dp-central-eps8": {"hfsl": {**DP, "dp_mechanism": "central"}},
    }
    spec = {"stages": ["prepare", "pretrain", "finetune", "hfsl"], "overrides": TINY}
    spec["trials"] = {"stages": ["hfsl"], "rows": rows}
    (tmp_path / "pipelines.yaml").write_text(
        yaml.safe_dump({"default": "faults", "pipelines": {"faults": spec}})
    )
    params = load_params(
        tmp_path / "params.yaml", load_pipelines(tmp_path / "pipelines.yaml").pipelines["faults"].overrides
    )
    folder = tmp_path / "runs" / "faults"
    for stage in ("prepare", "pretrain", "finetune"):
        run_stage(stage, params, Workspace(folder))
    argv = [str(folder), "--project", str(tmp_path), "--profile", "none", "--pipeline", "faults"]
    out = main([*argv, *(f"--row={row}" for row in rows)])["rows"]
    assert out["clean"]["dp"] == [{}]
    (sgd,) = out["dp-sgd-eps8"]["dp"]
    assert 0.97 * 8.0 <= sgd["dp_epsilon_spent"] <= 8.0  # every cluster took every step
    assert sgd["dp_sample_rate"] == pytest.approx(4 / 12)  # batch 4 of 12 labelled records
    for row in ("dp-eps8", "dp-central-eps8"):
        (dp,) = out[row]["dp"]
        assert dp["dp_epsilon"] <= 8.0 and dp["dp_noise_multiplier"] > 0
    assert len(out["dp-sgd-eps8"]["accuracy"][0]) == TINY["hfsl"]["rounds"]
