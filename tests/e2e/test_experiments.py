"""Experiments end to end: `ecogen run table3` and `ecogen run baselines` (shrunk to digits by a
profile), then `ecogen report` built from the MLflow store alone.

Checks that every (row, replicate) is its own tagged MLflow run, that the rows share one data
version, FM and edge fine-tune, and that the report's numbers are the runs' numbers.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from e2e_support import make_project, offline_env, read_yaml, sh, sqlite_uri, write_yaml
from mlflow import MlflowClient

from ecogen.tracking.report import to_trial

pytestmark = pytest.mark.slow

TINY_PROFILE = {
    "data": {
        "source": "digits",
        "test_per_domain": 60,
        "public_pool": 300,
        "edge_labelled": 40,
        "samples_per_cluster": 60,
        "labelled_fraction": 0.25,
    },
    "model": {"patch_size": 2, "dim": 16, "depth": 2, "heads": 2, "decoder_dim": 8},
    "pretrain": {"epochs": 1},
    "peft": {"epochs": 2},
    "hfsl": {"clusters": 2, "rounds": 2, "batch_size": 4, "unlabelled_ratio": 2},
    "energy": {"enabled": False},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("experiments"))
    spec = read_yaml(project / "pipelines.yaml")
    spec["profiles"]["tiny"] = TINY_PROFILE
    table3 = spec["pipelines"]["table3"]["trials"]
    table3["rows"] = {"c1": {"hfsl": {"clusters": 1}}, "c2": {"hfsl": {"clusters": 2}}}
    table3["replicates"], table3["fm_draws"] = 1, 2  # each row on two foundation models
    spec["pipelines"]["baselines"]["trials"] |= {"replicates": 1, "fm_draws": 1}
    write_yaml(project / "pipelines.yaml", spec)
    env = offline_env(project)
    for pipeline in ("table3", "baselines"):
        sh(["ecogen", "run", pipeline, "--profile", "tiny"], project, env, timeout=900)
    sh(["ecogen", "report", "--profile", "tiny"], project, env, timeout=300)
    return project


def _client(project: Path) -> tuple[MlflowClient, str]:
    client = MlflowClient(sqlite_uri(project))
    exp = client.get_experiment_by_name("ecogen")
    assert exp is not None
    return client, exp.experiment_id


def test_every_row_and_replicate_is_a_tagged_run_on_shared_stages(project: Path) -> None:
    client, exp = _client(project)
    trials = client.search_runs(
        [exp], "tags.`ecogen.pipeline` = 'baselines' AND tags.`ecogen.stage` = 'hfsl'"
    )
    rows = {r.data.tags["ecogen.row"]: r for r in trials}
    assert set(rows) == set(read_yaml(project / "pipelines.yaml")["pipelines"]["baselines"]["trials"]["rows"])
    assert {r.data.params["hfsl.method"] for r in trials} == {
        "ecogen", "centralized", "pooled_labels", "edge_alone", "local", "fedavg_full", "fedavg_peft",
        "splitfed",
    }  # fmt: skip
    assert {r.data.tags["ecogen.data_version"] for r in trials} == {
        client.search_runs([exp], "tags.`ecogen.pipeline` = 'baselines' AND tags.`ecogen.stage` = 'prepare'")[
            0
        ].data.tags["ecogen.data_version"]
    }
    finetunes = client.search_runs(
        [exp], "tags.`ecogen.pipeline` = 'baselines' AND tags.`ecogen.stage` = 'finetune'"
    )
    assert len(finetunes) == 1  # shared by every row
    (pipeline,) = client.search_runs(
        [exp], "tags.`ecogen.pipeline` = 'baselines' AND tags.`ecogen.kind` = 'pipeline'"
    )
    assert pipeline.data.tags["ecogen.profile"] == "tiny"  # what `ecogen report --profile` selects by
    assert all(r.info.status == "FINISHED" for r in trials)
    spans = sorted((r.info.start_time, r.info.end_time) for r in trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))  # trials.parallel: 2
    oracle, ecogen = rows["centralized"].data.metrics, rows["ecogen"].data.metrics
    assert oracle["mean_edge_client_bytes_per_round"] == 0.0
    assert (
        ecogen["mean_edge_client_bytes_per_round"]
        < rows["fedavg-full"].data.metrics["mean_edge_client_bytes_per_round"]
    )


def test_baselines_reuse_the_stages_table3_made_with_the_same_params(project: Path) -> None:
    """Work not done twice: the same prepare / pretrain / finetune params (one YAML anchor, one
    profile) — baselines copies table3's outputs and its stage runs say where from."""
    client, exp = _client(project)
    for stage in ("prepare", "pretrain", "finetune"):
        table3 = client.search_runs(
            [exp], f"tags.`ecogen.pipeline` = 'table3' AND tags.`ecogen.stage` = '{stage}'"
        )
        (made,) = [r for r in table3 if "ecogen.fm_draw" not in r.data.tags]  # table3's FM draw 0
        (copied,) = client.search_runs(
            [exp], f"tags.`ecogen.pipeline` = 'baselines' AND tags.`ecogen.stage` = '{stage}'"
        )
        assert "reused_from" not in made.data.params
        assert copied.data.params["reused_from"] == f"runs/table3 (run {made.info.run_id})"
        written = json.loads((project / "runs" / "table3" / "metrics" / f"{stage}.json").read_text())
        # the stage's results (not its duration or energy, nor the epochs it logged as it trained)
        shared = {k: v for k, v in made.data.metrics.items() if k in written}
        assert shared
        assert {k: copied.data.metrics[k] for k in shared} == shared
    runs = project / "runs"
    assert (runs / "baselines/artifacts/fm.pt").read_bytes() == (runs / "table3/artifacts/fm.pt").read_bytes()
    assert (runs / "baselines/data.dvc").read_text() == (runs / "table3/data.dvc").read_text()
    keys = json.loads((runs / "baselines/.stage-keys.json").read_text())
    assert (
        keys["finetune"]["key"]
        == json.loads((runs / "table3/.stage-keys.json").read_text())["finetune"]["key"]
    )


def test_baselines_reuse_the_trial_table3_ran_with_the_same_recipe(project: Path) -> None:
    """Work not done twice, trials too: table3's c2 (2 clusters) is baselines' ecogen row in this
    profile; baselines copies the trial — its files, its metrics and their per-round histories."""
    client, exp = _client(project)

    def trial(pipeline: str, name: str):  # type: ignore[no-untyped-def]
        query = f"tags.`ecogen.pipeline` = '{pipeline}' AND tags.`ecogen.trial` = '{name}'"
        (run,) = client.search_runs([exp], query)
        return run

    made, copied = trial("table3", "c2-r0"), trial("baselines", "ecogen-r0")
    assert "reused_from" not in made.data.params
    assert copied.data.params["reused_from"] == f"runs/table3 trial c2-r0 (run {made.info.run_id})"
    for key in ("mean_accuracy", "mean_accuracy_first", "mean_edge_client_bytes_per_round"):
        assert copied.data.metrics[key] == made.data.metrics[key], key
    curves = [
        [
            (m.step, m.value)
            for m in sorted(client.get_metric_history(r.info.run_id, "mean_accuracy"), key=lambda m: m.step)
        ]
        for r in (made, copied)
    ]
    assert curves[0] == curves[1] and len(curves[0]) >= 2  # every round's accuracy, for the report
    assert copied.data.metrics["duration_s"] < made.data.metrics["duration_s"]  # its own time: a copy
    assert copied.data.metrics["source_duration_s"] == made.data.metrics["duration_s"]  # what making it took
    # the report charges the row what making its result cost, not the copy
    assert to_trial(client, copied).metrics["duration_s"] == made.data.metrics["duration_s"]
    runs = project / "runs"
    for kind in ("metrics/trials/{}/hfsl.json", "plots/trials/{}/hfsl_accuracy.csv"):
        assert (runs / "baselines" / kind.format("ecogen-r0")).read_bytes() == (
            runs / "table3" / kind.format("c2-r0")
        ).read_bytes()
    tunable = "artifacts/trials/{}/hfsl"
    assert sorted(p.name for p in (runs / "baselines" / tunable.format("ecogen-r0")).rglob("*")) == sorted(
        p.name for p in (runs / "table3" / tunable.format("c2-r0")).rglob("*")
    )
    # the other rows differ in method or levers, table3's c1 in clusters: they ran
    assert "reused_from" not in trial("baselines", "local-r0").data.params
    assert "reused_from" not in trial("table3", "c2-fm1-r0").data.params


def test_table3_draws_a_second_foundation_model_on_the_same_data(project: Path) -> None:
    """trials.fm_draws 2: draw 1 pre-trains and fine-tunes its own FM in runs/table3@fm1/ on the
    data of draw 0; its trials start from it, and the report pools both draws per row."""
    runs = project / "runs"
    for name in ("meta.json", "public.pt"):
        assert (runs / "table3@fm1/data" / name).read_bytes() == (runs / "table3/data" / name).read_bytes()
    assert (runs / "table3@fm1/artifacts/fm.pt").read_bytes() != (
        runs / "table3/artifacts/fm.pt"
    ).read_bytes()
    client, exp = _client(project)
    (fm1,) = client.search_runs(
        [exp],
        "tags.`ecogen.pipeline` = 'table3' AND tags.`ecogen.stage` = 'pretrain' "
        "AND tags.`ecogen.fm_draw` = '1'",
    )
    assert fm1.data.params["pretrain.draw"] == "1" and fm1.info.run_name == "pretrain[fm 1]"
    c1 = client.search_runs([exp], "tags.`ecogen.pipeline` = 'table3' AND tags.`ecogen.row` = 'c1'")
    assert sorted(r.data.tags.get("ecogen.fm_draw", "0") for r in c1) == ["0", "1"]
    assert sorted(r.data.params["pretrain.draw"] for r in c1) == ["0", "1"]
    row = json.loads((project / "reports" / "report.json").read_text())["table3"]["c1"]
    assert (row["replicates"], row["fm_draws"]) == (2, 2)


def test_report_numbers_are_the_runs_numbers(project: Path) -> None:
    client, exp = _client(project)
    report = json.loads((project / "reports" / "report.json").read_text())
    text = (project / "reports" / "report.md").read_text()
    assert "Table 3" in text and "Targets" in text
    c1 = client.search_runs([exp], "tags.`ecogen.pipeline` = 'table3' AND tags.`ecogen.row` = 'c1'")
    ends = [r.data.metrics["mean_accuracy"] for r in c1]
    assert len(ends) == 2
    flat = json.dumps(report)
    assert f"{statistics.mean(ends):.3f}" in text
    assert "table3" in flat and "baselines" in flat
    (run,) = client.search_runs([exp], "tags.`ecogen.kind` = 'report'")
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "report.md" in names and "report.json" in names
    for png in ("accuracy_per_round.png", "table3.png", "bytes_per_round.png", "energy.png"):
        assert (project / "reports" / png).stat().st_size > 0


def test_dvc_renders_the_report_metrics_and_plots(project: Path) -> None:
    env = offline_env(project)
    shown = sh(["dvc", "metrics", "show", "reports/report.json"], project, env).stdout
    assert "reports/report.json" in shown
    sh(["dvc", "plots", "show", "--out", str(project / ".plots")], project, env)
    html = (project / ".plots" / "index.html").read_text()
    assert "table3.png" in html and "http://" not in html and "https://" not in html
