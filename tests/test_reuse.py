"""ecogen/reuse.py: stage keys, what is offered for reuse, and what gets copied."""

from __future__ import annotations

from pathlib import Path

import yaml

from ecogen import reuse
from ecogen.config.params import Params
from ecogen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def test_stage_params_and_code_are_dvc_yamls() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in reuse.REUSABLE:
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
