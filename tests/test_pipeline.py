"""The glue's bookkeeping of FM draws: stage labels, the plan, and each draw's folder."""

from __future__ import annotations

from pathlib import Path

from ecogen.config import Params, expand_trials
from ecogen.config.pipelines import Trials
from ecogen.pipeline import RUN_MARKER, RunContext, draw_folder, stage_plan, start_draw


def _ctx(root: Path) -> RunContext:
    workdir = draw_folder(root, "exp", 0)
    return RunContext(pipeline="exp", params=Params(), project_root=root, workdir=workdir, run_id="r1")


def test_a_second_fm_draw_runs_its_shared_stages_then_its_trials() -> None:
    trials = expand_trials(Params(), Trials(stages=["hfsl"], rows={"a": {}}, fm_draws=2))
    plan = stage_plan(["prepare", "pretrain", "finetune", "hfsl"], trials, ["hfsl"], [], 0)
    assert plan == (
        "prepare", "pretrain", "finetune", "pretrain[fm 1]", "finetune[fm 1]", "hfsl[a-r0]", "hfsl[a-fm1-r0]",
    )  # fmt: skip


def test_each_draw_works_in_its_own_folder_on_the_pipelines_data(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    (ctx.workdir / "data").mkdir(parents=True)
    (ctx.workdir / "data" / "train.npz").write_bytes(b"images")
    (ctx.workdir / "metrics").mkdir()
    (ctx.workdir / "metrics" / "prepare.json").write_text("{}")
    (ctx.workdir / RUN_MARKER).write_text('{"run_id": "r1"}\n')
    one = start_draw(ctx, 1)
    assert one.workdir == tmp_path / "runs" / "exp@fm1" and one.params.pretrain.draw == 1
    assert (one.workdir / "data" / "train.npz").read_bytes() == b"images"  # same data, another FM
    assert (one.workdir / RUN_MARKER).read_text() == '{"run_id": "r1"}\n'
    assert one.stage_label("pretrain") == "pretrain[fm 1]" and ctx.stage_label("pretrain") == "pretrain"
    a0, a1 = expand_trials(Params(), Trials(stages=["hfsl"], rows={"a": {}}, fm_draws=2))
    assert ctx.for_trial(a0).workdir == ctx.workdir
    assert ctx.for_trial(a1).workdir == one.workdir and ctx.for_trial(a1).params.pretrain.draw == 1
    assert one.for_trial(a1).stage_label("hfsl") == "hfsl[a-fm1-r0]"
