"""`dvc repro` end to end: the six stages of dvc.yaml run `ecogen stage S` in a fresh project,
a second repro runs nothing, and editing one parameter reruns exactly the stages that read it.

The project gets the repo's dvc.yaml, a params.yaml with the quick pipeline's overrides (shrunk
further) merged in, and a copy of the source folders dvc.yaml lists as dependencies (the
`ecogen` command itself is the installed one).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from e2e_support import (
    ROOT,
    make_project,
    offline_env,
    quick_overrides,
    read_yaml,
    sh,
    sqlite_uri,
    write_yaml,
)

from ecogen.config import load_params
from ecogen.config.load import deep_merge

pytestmark = pytest.mark.slow

STAGES = ["prepare", "pretrain", "finetune", "hfsl", "relay", "infer"]


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def copy_code_deps(project: Path) -> None:
    """The dependencies in dvc.yaml that no stage produces are source folders of the repo (e.g.
    ``ecogen/data``): copy their whole top-level package, so the copy is a complete, importable
    tree rather than a fragment that would shadow the installed package from this directory."""
    stages = read_yaml(project / "dvc.yaml")["stages"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for s in stages.values() for o in s.get("outs", [])}
    deps = {d for s in stages.values() for d in s.get("deps", [])}
    sources = {d for d in deps if not any(Path(o) == Path(d) or Path(o) in Path(d).parents for o in outs)}
    assert sources, "dvc.yaml lists no source dependencies"
    for top in sorted({Path(d).parts[0] for d in sources}):
        src = ROOT / top
        if src.is_dir():
            shutil.copytree(src, project / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(src, project / top)


def set_param(project: Path, section: str, key: str, value: object) -> None:
    params = read_yaml(project / "params.yaml")
    params[section][key] = value
    write_yaml(project / "params.yaml", params)
    load_params(project / "params.yaml")  # still valid for ecogen/config/params.py


def test_dvc_repro_runs_the_chain_once_and_reruns_only_what_a_param_touches(
    tmp_path: Path, offline_process_env: None
) -> None:
    project = make_project(tmp_path / "project")
    params = read_yaml(project / "params.yaml")
    write_yaml(project / "params.yaml", deep_merge(params, quick_overrides()))
    load_params(project / "params.yaml")
    copy_code_deps(project)
    env = offline_env(project)

    def dvc(*args: str, timeout: float = 300) -> str:
        # stdout only: `dvc metrics show` warns on stderr about reports/report.json, which only
        # `ecogen report` writes
        return sh(["dvc", *args], project, env, timeout=timeout, merge_stderr=False).stdout

    dvc("init", "-q")

    # 1. the whole chain, in order
    out = dvc("repro")
    assert ran(out) == STAGES, out[-3000:]
    for stage in STAGES:
        assert (project / "metrics" / f"{stage}.json").is_file(), stage
    assert (project / "artifacts" / "fm.pt").is_file()
    lock_path = project / "dvc.lock"
    lock = read_yaml(lock_path)
    assert sorted(lock["stages"]) == sorted(STAGES)
    (data_out,) = [o for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data"]
    data_md5 = data_out["md5"]
    infer = json.loads((project / "metrics" / "infer.json").read_text())
    domains = params["data"]["domains"]
    assert {f"edge-{d}/accuracy" for d in domains} <= set(infer), sorted(infer)

    # the repro is one pipeline run (pipeline "dvc") with a stage run per stage, as `ecogen run`
    # logs; every run records the data version dvc.lock holds
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=sqlite_uri(project))
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    assert experiment is not None
    exp = experiment.experiment_id
    (parent,) = client.search_runs([exp], "tags.`ecogen.kind` = 'pipeline'")
    assert parent.data.tags["ecogen.pipeline"] == "dvc" and parent.info.status == "FINISHED"
    assert parent.data.tags["mlflow.source.name"] == "dvc repro"
    assert parent.data.tags["ecogen.data_version"] == data_md5
    assert "infer.mean_accuracy" in parent.data.metrics and "total_duration_s" in parent.data.metrics
    runs = client.search_runs([exp], "tags.`ecogen.kind` = 'stage'")
    assert sorted(r.data.tags["ecogen.stage"] for r in runs) == sorted(STAGES)
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs} == {parent.info.run_id}
    assert {r.data.tags.get("ecogen.pipeline") for r in runs} == {"dvc"}
    assert {r.data.tags.get("ecogen.data_version") for r in runs} == {data_md5}
    assert {r.info.status for r in runs} == {"FINISHED"}

    # 2. nothing changed: nothing runs, the lock stays byte for byte
    status = dvc("status")
    assert "up to date" in status, status
    before = lock_path.read_bytes()
    out = dvc("repro")
    assert ran(out) == [], out[-3000:]
    assert lock_path.read_bytes() == before

    # 3. a parameter only `infer` reads
    old_link_ms = infer["mean_link_ms_per_request"]
    set_param(project, "inference", "d2d_bandwidth_mbps", params["inference"]["d2d_bandwidth_mbps"] / 4)
    status = dvc("status")
    assert "infer" in status and "hfsl" not in status, status
    out = dvc("repro")
    assert ran(out) == ["infer"], out[-3000:]
    parents = client.search_runs([exp], "tags.`ecogen.kind` = 'pipeline'")
    assert len(parents) == 2  # a repro is a run of its own
    query = f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'"
    assert [r.data.tags["ecogen.stage"] for r in client.search_runs([exp], query)] == ["infer"]
    infer = json.loads((project / "metrics" / "infer.json").read_text())
    assert infer["mean_link_ms_per_request"] > old_link_ms  # a slower link: longer transfers

    # 4. HFSL rounds: hfsl reruns, and relay and infer because their input (artifacts/hfsl) changed
    rounds = read_yaml(project / "params.yaml")["hfsl"]["rounds"]
    set_param(project, "hfsl", "rounds", rounds + 1)
    out = dvc("repro")
    assert ran(out)[0] == "hfsl" and sorted(ran(out)) == ["hfsl", "infer", "relay"], out[-3000:]
    assert "up to date" in dvc("status")
    hfsl_lock = read_yaml(lock_path)["stages"]["hfsl"]["params"]["params.yaml"]
    assert hfsl_lock["hfsl"]["rounds"] == rounds + 1

    # 5. `dvc metrics show`: a narrow table of every stage's few numbers; no report (only
    # `ecogen report` writes it: `dvc metrics show reports/report.json`)
    shown = json.loads(dvc("metrics", "show", "--json"))
    files = {Path(f).as_posix() for rev in shown.values() for f in rev.get("data", {})}
    assert files == {f"metrics/dvc/{s}.json" for s in STAGES}, shown
    table = sh(["dvc", "metrics", "show"], project, env).stdout  # stderr too: no warning
    assert "metrics/dvc/infer.json" in table and "accuracy" in table and "WARNING" not in table, table
    assert max(len(line) for line in table.splitlines()) <= 120, table
    assert "edge-" in dvc("metrics", "show", "metrics/infer.json")  # the full metrics, on demand

    # 6. `dvc plots show`: PNGs only, nothing to fetch from the network to render them
    dvc("plots", "show", "--out", "dvc_plots")
    html = (project / "dvc_plots" / "index.html").read_text()
    assert "<img" in html and "hfsl_accuracy.png" in html, html[:3000]
    assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)
