"""`build_report` against a real SQLite MLflow store holding fake pipeline and trial runs."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ecogen.config.params import Params
from ecogen.tracking.report import SOURCES, build_report
from ecogen.tracking.runs import experiment_id

ROUNDS = 3
REPLICATES = 2
BASELINE_ENDS = {  # row → end accuracy per replicate; first round = end − 0.03
    "ecogen": [0.95, 0.96],
    "ecogen-labels-only": [0.92, 0.93],
    "centralized": [0.97, 0.98],
    "fedavg-full": [0.94, 0.95],
}
FULL_BYTES, ECOGEN_BYTES = 2.0e7, 4.0e5
TARGETS = (
    "EcoGen end accuracy vs centralized oracle",
    "Table 3: end > first in every row",
    "Table 3: end accuracy non-decreasing in clusters (within one std)",
    "EcoGen bytes/round vs FedAvg-full, at no loss of accuracy",
    "Unlabelled data helps: ecogen − ecogen-labels-only end",
)


def t3_end(clusters: int, replicate: int) -> float:
    return round(0.90 + 0.01 * clusters + 0.002 * replicate, 4)


class FakeRuns:
    """Pipeline and trial runs shaped like the ones `ecogen run` logs (tags, params, histories)."""

    def __init__(self, client: MlflowClient, exp_id: str) -> None:
        self.client, self.exp_id, self.clock = client, exp_id, 1_700_000_000_000

    def _run(self, name: str, tags: dict[str, str], params: dict[str, str], metrics: list[Metric]) -> str:
        self.clock += 1000
        rid = self.client.create_run(self.exp_id, start_time=self.clock, run_name=name).info.run_id
        self.client.log_batch(
            rid,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        return rid

    def pipeline(self, name: str, status: str = "FINISHED") -> tuple[str, str]:
        params = {"data.source": "digits", "model.dim": "32", "hfsl.rounds": str(ROUNDS)}
        rid = self._run(name, {"ecogen.kind": "pipeline", "ecogen.pipeline": name}, params, [])
        if status != "RUNNING":
            self.client.set_terminated(rid, status)
        return name, rid

    def trial(
        self,
        parent: tuple[str, str],
        row: str,
        k: int,
        end: float,
        extra: dict[str, float],
        status: str = "FINISHED",
    ) -> str:
        tags = {
            MLFLOW_PARENT_RUN_ID: parent[1],
            "ecogen.kind": "stage",
            "ecogen.stage": "hfsl",
            "ecogen.pipeline": parent[0],
            "ecogen.row": row,
            "ecogen.replicate": str(k),
            "ecogen.trial": f"{row}-r{k}",
        }
        first = end - 0.03
        curve = [first, (first + end) / 2, end]  # rounds 1..3
        scalars = {"mean_accuracy_start": 0.1, "mean_accuracy_first": first, **extra}
        metrics = [
            *(Metric("mean_accuracy", v, self.clock + r, r) for r, v in enumerate(curve, start=1)),
            Metric("mean_accuracy", end, self.clock + 9, ROUNDS),  # the final scalar repeats the last step
            *(Metric(key, value, self.clock + 9, 0) for key, value in scalars.items()),
        ]
        params = {"hfsl.clusters": row[1:] if row.startswith("c") else "6", "replicate": str(k)}
        rid = self._run(f"hfsl[{row}-r{k}]", tags, params, metrics)
        self.client.set_terminated(rid, status)
        return rid


@pytest.fixture(scope="module")
def store(project: Path, params: Params) -> dict[str, str]:
    """table3: an older run, the latest finished one (used), a newer one still running (skipped);
    baselines: an older finished run and a newer FAILED one whose finished trials are used (a rerun
    trial replaces its first attempt; a failed trial is left out)."""
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(uri)
    runs = FakeRuns(client, experiment_id(client, params.tracking.experiment, uri, project))
    runs.trial(runs.pipeline("table3"), "c1", 0, 0.5, {})
    table3 = runs.pipeline("table3")
    for c in range(1, 7):
        for k in range(REPLICATES):
            runs.trial(table3, f"c{c}", k, t3_end(c, k), {"energy_kwh": 1e-3})
    runs.trial(runs.pipeline("table3", status="RUNNING"), "c1", 0, 0.1, {})
    runs.trial(runs.pipeline("baselines"), "ecogen", 0, 0.2, {})
    baselines = runs.pipeline("baselines", status="FAILED")
    runs.trial(baselines, "ecogen", 0, 0.5, {})  # superseded by the rerun of ecogen-r0 below
    for row, ends in BASELINE_ENDS.items():
        for k, end in enumerate(ends):
            extra = {
                "mean_edge_client_bytes_per_round": FULL_BYTES if row == "fedavg-full" else ECOGEN_BYTES,
                "mean_fedavg_full_bytes_per_round": FULL_BYTES,
                "energy_kwh": 0.001 * (k + 1),
                "duration_s": 10.0 + k,
            }
            runs.trial(baselines, row, k, end, extra)
    runs.trial(baselines, "splitfed", 0, 0.99, {}, status="FAILED")  # did not finish: left out
    return {"table3": table3[1], "baselines": baselines[1]}


def cells(markdown: str, first_cell: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def test_report_numbers_match_the_runs(
    store: dict[str, str], params: Params, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    md = build_report(params, project, out).read_text()

    assert cells(md, "table3")[1] == f"`{store['table3']}`"
    assert cells(md, "baselines")[1:3] == [f"`{store['baselines']}`", "FAILED"]
    assert cells(md, "baselines")[4] == "8 (+2 unfinished or rerun, left out)"
    for c in range(1, 7):
        ends = [t3_end(c, k) for k in range(REPLICATES)]
        row = cells(md, str(c))
        assert row[1:3] == [mean_std([e - 0.03 for e in ends]), mean_std(ends)]
    ecogen = cells(md, "ecogen")
    end = statistics.mean(BASELINE_ENDS["ecogen"])
    assert ecogen[2] == mean_std(BASELINE_ENDS["ecogen"])
    assert ecogen[3] == f"{end / statistics.mean(BASELINE_ENDS['centralized']):.3f}"
    assert ecogen[4:6] == ["400.00 kB", "2.00%"]
    assert ecogen[7] == f"0.0015 ± {statistics.stdev([0.001, 0.002]):.3g}"
    assert cells(md, "splitfed")[1] == "not run"
    assert [cells(md, t)[-1] for t in TARGETS] == ["**PASS**"] * len(TARGETS)

    data = json.loads((out / "report.json").read_text())
    assert data["table3"]["c3"]["accuracy"]["mean"] == pytest.approx(
        statistics.mean([t3_end(3, 0), t3_end(3, 1)])
    )
    assert data["baselines"]["ecogen"]["energy_kwh"]["std"] == pytest.approx(statistics.stdev([0.001, 0.002]))
    with (out / "accuracy_per_round.csv").open() as f:
        curve = [(r["round"], float(r["accuracy"])) for r in csv.DictReader(f) if r["method"] == "ecogen"]
    expected = [0.1, end - 0.03, end - 0.015, end]  # round 0 from mean_accuracy_start; the repeat is dropped
    assert curve == [(str(r), pytest.approx(v)) for r, v in enumerate(expected)]

    client = MlflowClient()
    exp_id = client.get_experiment_by_name(params.tracking.experiment).experiment_id
    (report,) = client.search_runs([exp_id], "tags.`ecogen.kind` = 'report'")
    assert report.info.status == "FINISHED" and report.info.run_name == "report"
    assert report.data.tags[SOURCES] == f"{store['table3']},{store['baselines']}"
    assert report.info.run_id in md
    assert report.data.metrics["target.semi_supervised_gain"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(report.info.run_id)}
    assert {
        "report.md",
        "report.json",
        "table3.csv",
        "bytes.csv",
        "accuracy_per_round.png",
        "energy.png",
    } <= artifacts


def test_missing_pipelines_are_not_run(store: dict[str, str], project: Path, tmp_path: Path) -> None:
    params = Params.model_validate({"tracking": {"experiment": "ecogen-report-empty"}})
    md = build_report(
        params, project, tmp_path / "empty", pipelines=("table3", "baselines", "nope")
    ).read_text()
    assert "no finished `table3` pipeline run" in md and "no finished `nope` pipeline run" in md
    assert md.count("**not run**") == len(TARGETS)
    assert json.loads((tmp_path / "empty" / "report.json").read_text())["baselines"] == {"status": "not run"}
