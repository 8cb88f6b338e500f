"""ecogen/runtime/reuse.py: stage keys, what is offered for reuse, and what gets copied."""

from __future__ import annotations

from pathlib import Path

import yaml

from ecogen.config.params import Params
from ecogen.runtime import reuse
from ecogen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]


def test_stage_params_and_code_are_dvc_yamls() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in (*reuse.REUSABLE, *reuse.TRIAL_REUSABLE):
        assert tuple(stages[stage]["params"]) == reuse.STAGE_PARAMS[stage]
        code = {d.removeprefix("ecogen/") for d in stages[stage]["deps"] if d.startswith("ecogen/")}
        assert code == set(reuse.STAGE_CODE[stage])


def test_a_key_changes_with_what_the_stage_or_its_upstream_reads() -> None:
    p = Params()
    keys = {s: reuse.stage_key(p, s) for s in reuse.REUSABLE}
    hfsl = Params.model_validate({"hfsl": {"rounds": 3, "method": "local"}})
    assert {s: reuse.stage_key(hfsl, s) for s in reuse.REUSABLE} == keys  # nothing shared reads hfsl.rounds
    bigger = Params.model_validate({"pretrain": {"epochs": p.pretrain.epochs + 1}})
    assert reuse.stage_key(bigger, "prepare") == keys["prepare"]
    assert reuse.stage_key(bigger, "pretrain") != keys["pretrain"]
    assert reuse.stage_key(bigger, "finetune") != keys["finetune"]  # its FM differs


def _made(root: Path, pipeline: str, params: Params) -> Path:
    work = root / "runs" / pipeline
    ws = Workspace(work)
    for stage in ("prepare", "pretrain"):
        for out in reuse.outputs(ws, stage):
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix:
                out.write_text(f"{pipeline} {stage} {out.name}")
            else:
                out.mkdir()
                (out / "x.pt").write_text(pipeline)
        reuse.remember(work, params, stage, run_id=f"{pipeline}-{stage}")
    return work


def test_found_only_with_the_same_key_and_the_outputs_present(tmp_path: Path) -> None:
    p = Params()
    a = _made(tmp_path, "a", p)
    b = tmp_path / "runs" / "b"
    assert reuse.find(tmp_path, b, p, "pretrain") == (a, "a-pretrain")
    assert reuse.find(tmp_path, a, p, "pretrain") is None  # never from itself
    assert reuse.find(tmp_path, b, Params(seed=1), "pretrain") is None
    assert reuse.find(tmp_path, b, p, "finetune") is None  # a never finished it
    (a / "artifacts" / "fm.pt").unlink()
    assert reuse.find(tmp_path, b, p, "pretrain") is None


def test_a_stage_about_to_run_is_offered_no_more_nor_is_what_follows(tmp_path: Path) -> None:
    p = Params()
    a = _made(tmp_path, "a", p)
    b = tmp_path / "runs" / "b"
    reuse.forget(a, "prepare")
    assert reuse.find(tmp_path, b, p, "prepare") is None
    assert reuse.find(tmp_path, b, p, "pretrain") is None


def test_copy_replaces_what_was_there(tmp_path: Path) -> None:
    p = Params()
    a = _made(tmp_path, "a", p)
    b = tmp_path / "runs" / "b"
    stale = Workspace(b).data / "old.pt"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    reuse.copy_outputs(a, b, "prepare")
    assert not stale.exists()
    assert (Workspace(b).data / "x.pt").read_text() == "a"
    assert (Workspace(b).metrics / "prepare.json").read_text() == "a prepare prepare.json"


def test_a_trial_is_found_in_another_pipeline_by_its_recipe_on_the_same_finetune(tmp_path: Path) -> None:
    base = Params()
    table3, baselines = tmp_path / "runs" / "table3", tmp_path / "runs" / "baselines"
    c6 = Params.model_validate({"hfsl": {"clusters": 6}})
    assert reuse.trial_key(c6, "hfsl", table3) is None  # no finetune key yet: nothing to match by
    for work in (table3, baselines):
        reuse.remember(work, base, "finetune", run_id=f"{work.name}-finetune")
    ws = Workspace(table3, "c6-r0")
    for out in reuse.outputs(ws, "hfsl")[:2]:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir() if not out.suffix else out.write_text("{}")
    (ws.plots / "hfsl_accuracy.csv").parent.mkdir(parents=True, exist_ok=True)
    (ws.plots / "hfsl_accuracy.csv").write_text("round,accuracy\n")
    reuse.remember_trial(table3, c6, "hfsl", "c6-r0", run_id="t3-c6-r0")
    same = Params.model_validate({"hfsl": {"clusters": 6, "method": "ecogen"}})  # the same recipe
    assert reuse.find_trial(tmp_path, baselines, same, "hfsl") == (table3, "c6-r0", "t3-c6-r0")
    replicate1 = Params.model_validate({"hfsl": {"clusters": 6}, "replicate": 1})  # its seeds differ
    assert reuse.find_trial(tmp_path, baselines, replicate1, "hfsl") is None
    assert (
        reuse.find_trial(tmp_path, baselines, Params.model_validate({"hfsl": {"method": "local"}}), "hfsl")
        is None
    )
    reuse.copy_trial_outputs(table3, "c6-r0", baselines, "ecogen-r0", "hfsl")
    mine = Workspace(baselines, "ecogen-r0")
    assert (mine.metrics / "hfsl.json").is_file() and (mine.plots / "hfsl_accuracy.csv").is_file()
    assert mine.hfsl_rounds.parent.is_dir()
    # a trial's key holds the finetune it was made on: on another one it is not the same trial
    reuse.remember(baselines, Params.model_validate({"peft": {"epochs": 2}}), "finetune", run_id="other")
    assert reuse.find_trial(tmp_path, baselines, same, "hfsl") is None
    reuse.forget(table3, "hfsl[c6-r0]")  # the trial runs again: not offered meanwhile
    assert "hfsl[c6-r0]" not in reuse._keys(table3)
