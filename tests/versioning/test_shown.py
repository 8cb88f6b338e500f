"""metrics/dvc/ and plots/dvc/: the last run's few numbers and plots, what dvc.yaml's top-level
``metrics:`` and ``plots:`` list for `dvc metrics show` / `dvc plots show`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ecogen.versioning import show_last_run
from ecogen.versioning.shown import shown_metrics, shown_plots

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _run_folder(work: Path) -> None:
    """A run's files: shared stages, two trials (one left over from an earlier run), PNGs and CSVs."""
    _write(work / "metrics" / "pretrain.json", json.dumps({"mae_loss": 0.5, "edge-a/x": 1.0}))
    _write(work / "metrics" / "gate.json", json.dumps({"promoted": 1.0}))  # no column: not shown
    for trial in ("row-r0", "old-r9"):
        hfsl = {"mean_accuracy": 0.75, "mean_edge_client_bytes_per_round": None}
        _write(work / "metrics" / "trials" / trial / "hfsl.json", json.dumps(hfsl))
        _write(work / "plots" / "trials" / trial / "hfsl_accuracy.png", trial)
    _write(work / "plots" / "fm_reconstructions.png", "png")
    _write(work / "plots" / "hfsl_accuracy.csv", "round,a\n")


def test_a_run_is_shown_as_its_stage_runs_left_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    work = project / "runs" / "table3"
    _run_folder(work)
    _write(shown_metrics(project) / "relay.json", "{}")  # an earlier run's: gone
    _write(shown_plots(project) / "relay_fm_after.png", "png")

    show_last_run(work, project, ("prepare", "pretrain", "finetune", "hfsl[row-r0]", "infer[row-r0]"))

    shown = {p.relative_to(project).as_posix() for p in project.glob("[mp]*/dvc/**/*") if p.is_file()}
    assert shown == {
        "metrics/dvc/pretrain.json",
        "metrics/dvc/trials/row-r0/hfsl.json",
        "plots/dvc/fm_reconstructions.png",
        "plots/dvc/trials/row-r0/hfsl_accuracy.png",
    }
    assert json.loads((shown_metrics(project) / "pretrain.json").read_text()) == {"mae_loss": 0.5}
    hfsl = json.loads((shown_metrics(project) / "trials" / "row-r0" / "hfsl.json").read_text())
    assert hfsl == {"accuracy": 0.75}
    assert (shown_plots(project) / "trials" / "row-r0" / "hfsl_accuracy.png").read_text() == "row-r0"


def test_the_project_roots_stage_outputs_are_shown_without_the_copy_itself(tmp_path: Path) -> None:
    """`dvc repro`: the stages write in the project root, where the shown copy lives too."""
    _write(tmp_path / "metrics" / "infer.json", json.dumps({"mean_accuracy": 0.5}))
    _write(tmp_path / "plots" / "hfsl_accuracy.png", "png")
    _write(shown_metrics(tmp_path) / "trials" / "row-r0" / "hfsl.json", "{}")  # an `ecogen run`'s
    _write(shown_metrics(tmp_path) / "hfsl.json", json.dumps({"accuracy": 0.1}))
    _write(shown_plots(tmp_path) / "hfsl_accuracy.png", "old")
    for _ in range(2):  # twice: what it wrote is not read back as a stage's
        show_last_run(tmp_path, tmp_path)
        assert sorted(p.name for p in shown_metrics(tmp_path).rglob("*") if p.is_file()) == ["infer.json"]
        assert json.loads((shown_metrics(tmp_path) / "infer.json").read_text()) == {"accuracy": 0.5}
        assert [p.name for p in shown_plots(tmp_path).rglob("*")] == ["hfsl_accuracy.png"]
        assert (shown_plots(tmp_path) / "hfsl_accuracy.png").read_text() == "png"


def test_dvc_yaml_lists_the_shown_copy_and_no_stage_outputs_it() -> None:
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert dvc_yaml["metrics"] == ["metrics/dvc"] and "plots/dvc" in dvc_yaml["plots"]
    for name, stage in dvc_yaml["stages"].items():
        assert "metrics" not in stage and "plots" not in stage, name  # one list of each: the top level
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
        assert not [o for o in outs if o.split("/")[1:2] == ["dvc"]], name
