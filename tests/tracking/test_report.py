"""`build_report` against a real SQLite MLflow store holding fake pipeline, trial, cycle and edge runs."""

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
from ecogen.reporting.tables import section
from ecogen.tracking.report import SOURCES, build_report
from ecogen.tracking.runs import experiment_id

ROUNDS = 3
REPLICATES = 2
BASELINE_ENDS = {  # row → end accuracy per replicate; first round = end − 0.03 (centralized: − 0.002)
    "ecogen": [0.95, 0.96],
    "ecogen-ssl": [0.965, 0.98],
    "pooled-labels": [0.93, 0.94],
    "edge-alone": [0.92, 0.93],
    "centralized": [0.97, 0.98],
    "fedavg-full": [0.94, 0.95],
}
START_ACC = 0.90  # every trial's edge model before HFSL (mean_accuracy_start)
FULL_BYTES, ECOGEN_BYTES = 2.0e7, 4.0e5
# hfsl-study: row → (rounds, start per replicate, end per replicate), in the order run
STUDY = {"rounds-10": (10, [0.90, 0.91], [0.95, 0.96]), "rounds-5": (5, [0.90, 0.92], [0.93, 0.96])}
STEPS, IMAGES = 210.0, 16_800.0
MINUTES = {"table3": 21.5, "baselines": 16.75, "hfsl-study": 30.0}  # wall time of the runs used
TARGETS = (
    "HFSL lifts the EcoGen edge model: ecogen end − start (baselines)",
    "EcoGen labels only vs central training on the same labels, same client compute",
    "The clusters are worth having: ecogen − edge alone end",
    "Unlabelled data helps: ecogen-ssl − ecogen (labels only) end",
    "Table 3: end > first in every row",
    "Table 3: most clusters vs fewest clusters, end accuracy",
    "EcoGen end accuracy vs centralized oracle",
    "Centralized oracle trained to convergence: last-round change",
    "Default pipeline: HFSL end − start",
    "Experiment pipeline runs' wall time",
    "EcoGen bytes/round vs FedAvg-full, at no loss of accuracy",
    "Table 3: end accuracy non-decreasing in clusters (within one std)",
    "30 % device dropout per round: EcoGen end vs the clean run (faults)",
    "One poisoning cluster: robust rules stay near the clean run, FedAvg does not (faults)",
    "Modelled device + link energy: EcoGen vs FedAvg-full to reach FedAvg-full's end accuracy",
    "First relay: FM mean accuracy vs the best single edge",
    "First relay: FM mean accuracy vs naive parameter averaging",
    "Relay: FM mean accuracy does not decrease over the cycles",
    "Redelivery: no edge loses accuracy vs before the first relay",
    "Relay upload per edge = tunable modules' bytes (vs the FM size)",
)
# the cycles pipeline, per cycle k: the relay's mean accuracies and each edge's accuracy after HFSL
RELAY_FM, RELAY_NAIVE, RELAY_BEST = [0.80, 0.82, 0.83], [0.76, 0.79, 0.80], [0.765, 0.78, 0.80]
HFSL_EDGES = [
    {"edge-identity": 0.90, "edge-invert": 0.85},
    {"edge-identity": 0.898, "edge-invert": 0.86},  # −0.002 after the first redelivery: allowed
    {"edge-identity": 0.91, "edge-invert": 0.87},
]
TUNABLE_BYTES, FM_BYTES = 14_184.0, 1.0e6
# the faults pipeline's rows (end accuracy of replicate 0; replicate k adds 0.002·k)
FAULT_ENDS = {
    "clean": 0.765,
    "dropout-30-hand-over": 0.758,
    "sign-flip-fedavg": 0.46,
    "sign-flip-median": 0.752,
    "sign-flip-trimmed": 0.749,
}


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

    def pipeline(
        self, name: str, status: str = "FINISHED", profile: str | None = None, minutes: float = 1.0
    ) -> tuple[str, str]:
        """A pipeline run that ended ``minutes`` after it started (unless still RUNNING)."""
        params = {"data.source": "digits", "model.dim": "32", "hfsl.rounds": str(ROUNDS)}
        tags = {"ecogen.kind": "pipeline", "ecogen.pipeline": name}
        if profile is not None:  # runs logged before the tag existed have none
            tags["ecogen.profile"] = profile
        rid = self._run(name, tags, params, [])
        if status != "RUNNING":
            self.client.set_terminated(rid, status, end_time=self.clock + round(minutes * 60_000))
        return name, rid

    def trial(
        self,
        parent: tuple[str, str],
        row: str,
        k: int,
        end: float,
        extra: dict[str, float],
        status: str = "FINISHED",
        start: float = START_ACC,
        climb: float = 0.03,
        rounds: int | None = None,
    ) -> str:
        """Trial ``row``-r``k``: accuracy ``start`` before HFSL, ``end − climb`` after round 1, ``end``."""
        tags = {
            MLFLOW_PARENT_RUN_ID: parent[1],
            "ecogen.kind": "stage",
            "ecogen.stage": "hfsl",
            "ecogen.pipeline": parent[0],
            "ecogen.row": row,
            "ecogen.replicate": str(k),
            "ecogen.trial": f"{row}-r{k}",
        }
        first = end - climb
        curve = [first, (first + end) / 2, end]  # rounds 1..3
        scalars = {"mean_accuracy_start": start, "mean_accuracy_first": first, **extra}
        metrics = [
            *(Metric("mean_accuracy", v, self.clock + r, r) for r, v in enumerate(curve, start=1)),
            Metric("mean_accuracy", end, self.clock + 9, ROUNDS),  # the final scalar repeats the last step
            *(Metric(key, value, self.clock + 9, 0) for key, value in scalars.items()),
        ]
        params = {"hfsl.clusters": row[1:] if row.startswith("c") else "6", "replicate": str(k)}
        if rounds is not None:
            params["hfsl.rounds"] = str(rounds)
        rid = self._run(f"hfsl[{row}-r{k}]", tags, params, metrics)
        self.client.set_terminated(rid, status)
        return rid

    def stage(
        self,
        parent: tuple[str, str],
        stage: str,
        k: int | None,
        metrics: dict[str, float],
        status: str = "FINISHED",
    ) -> str:
        """Stage run ``stage`` of cycle ``k`` (None: of a plain chain) under the pipeline run ``parent``."""
        tags = {
            MLFLOW_PARENT_RUN_ID: parent[1],
            "ecogen.kind": "stage",
            "ecogen.stage": stage,
            "ecogen.pipeline": parent[0],
        }
        if k is not None:
            tags["ecogen.cycle"] = str(k)
        params = {"best_edge": "invert"} if stage == "relay" else {}
        values = [Metric(key, v, self.clock, 0) for key, v in metrics.items()]
        rid = self._run(stage if k is None else f"{stage}[cycle {k}]", tags, params, values)
        self.client.set_terminated(rid, status)
        return rid

    def edge(self, stage_run: str, edge: str, metrics: dict[str, float]) -> None:
        tags = {MLFLOW_PARENT_RUN_ID: stage_run, "ecogen.kind": "edge", "ecogen.edge": edge}
        rid = self._run(edge, tags, {}, [Metric(key, v, self.clock, 0) for key, v in metrics.items()])
        self.client.set_terminated(rid, "FINISHED")

    def cycle(self, parent: tuple[str, str], k: int, shift: float = 0.0) -> None:
        """finetune → hfsl → relay of cycle ``k``, with edge runs; ``shift`` moves every accuracy."""
        finetune = {"mean_accuracy": 0.88 + shift, "mean_cloud_edge_down_bytes": FM_BYTES}
        if k:
            finetune["mean_accuracy_redelivered"] = 0.87 + shift
        ft = self.stage(parent, "finetune", k, finetune)
        for edge in HFSL_EDGES[k]:
            self.edge(ft, edge, {"accuracy": 0.88 + shift, **({"accuracy_redelivered": 0.87} if k else {})})
        hfsl = {
            "mean_accuracy": sum(HFSL_EDGES[k].values()) / 2 + shift,
            "mean_tunable_bytes": TUNABLE_BYTES,
            "mean_edge_client_bytes_per_round": 5.0e4,
            "mean_full_model_bytes": FM_BYTES + 2_000,
        }
        hf = self.stage(parent, "hfsl", k, hfsl)
        for edge, accuracy in HFSL_EDGES[k].items():
            self.edge(hf, edge, {"accuracy": accuracy + shift})
        relay = {
            "fm_mean_accuracy": RELAY_FM[k] + shift,
            "naive_mean_accuracy": RELAY_NAIVE[k] + shift,
            "best_edge_mean_accuracy": RELAY_BEST[k] + shift,
            "upload_bytes_per_edge": TUNABLE_BYTES,
            "fm_bytes": FM_BYTES,
            "energy_kwh": 2e-4,
        }
        self.stage(parent, "relay", k, relay)


@pytest.fixture(scope="module")
def store(project: Path, params: Params) -> dict[str, str]:
    """table3: an older run, the latest finished one (used), a newer one still running (skipped);
    baselines: an older finished run and a newer FAILED one whose finished trials are used (a rerun
    trial replaces its first attempt; a failed trial is left out); hfsl-study: one finished run;
    cycles: an older finished run, the latest finished one (used; a failed relay attempt of cycle 1
    left out) and a newer FAILED one that never finished a relay (skipped); default: a finished run
    (used; a failed hfsl attempt before the finished one left out) and a newer FAILED one (skipped)."""
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(uri)
    runs = FakeRuns(client, experiment_id(client, params.tracking.experiment, uri, project))
    runs.trial(runs.pipeline("table3"), "c1", 0, 0.5, {})
    table3 = runs.pipeline("table3", minutes=MINUTES["table3"])
    for c in range(1, 7):
        for k in range(REPLICATES):
            runs.trial(table3, f"c{c}", k, t3_end(c, k), {"energy_kwh": 1e-3})
    runs.trial(runs.pipeline("table3", status="RUNNING"), "c1", 0, 0.1, {})
    runs.trial(runs.pipeline("baselines"), "ecogen", 0, 0.2, {})
    baselines = runs.pipeline("baselines", status="FAILED", minutes=MINUTES["baselines"])
    runs.trial(baselines, "ecogen", 0, 0.5, {})  # superseded by the rerun of ecogen-r0 below
    for row, ends in BASELINE_ENDS.items():
        for k, end in enumerate(ends):
            extra = {
                "mean_edge_client_bytes_per_round": FULL_BYTES if row == "fedavg-full" else ECOGEN_BYTES,
                "mean_fedavg_full_bytes_per_round": FULL_BYTES,
                "energy_kwh": 0.001 * (k + 1),
                "duration_s": 10.0 + k,
                "mean_client_steps_per_round": STEPS,
                "mean_client_images_per_round": IMAGES,
                # modelled on the devices (ecogen.costs.method): FedAvg-full's phones spend 10×
                "mean_modelled_device_energy_j": 1000.0 if row == "fedavg-full" else 100.0,
                "mean_modelled_link_energy_j": 10.0,
                "mean_modelled_time_s": 50.0,
            }
            runs.trial(baselines, row, k, end, extra, climb=0.002 if row == "centralized" else 0.03)
    runs.trial(baselines, "splitfed", 0, 0.99, {}, status="FAILED")  # did not finish: left out
    study = runs.pipeline("hfsl-study", minutes=MINUTES["hfsl-study"])
    for row, (rounds, starts, ends) in STUDY.items():
        for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
            extra = {
                "mean_client_steps_per_round": STEPS * (k + 1),
                "mean_client_images_per_round": IMAGES,
                "mean_edge_client_bytes_per_round": ECOGEN_BYTES,
            }
            runs.trial(study, row, k, end, extra, start=start, rounds=rounds)
    faults = runs.pipeline("faults")
    for row, end in FAULT_ENDS.items():
        for k in range(REPLICATES):
            runs.trial(faults, row, k, end + 0.002 * k, {})
    runs.cycle(runs.pipeline("cycles"), 0, shift=-0.3)
    cycles = runs.pipeline("cycles")
    for k in range(len(RELAY_FM)):
        if k == 1:
            runs.stage(cycles, "relay", 1, {"fm_mean_accuracy": 0.1}, status="FAILED")
        runs.cycle(cycles, k)
    runs.stage(runs.pipeline("cycles", status="FAILED"), "finetune", 0, {"mean_accuracy": 0.1})
    default = runs.pipeline("default")
    runs.stage(default, "hfsl", None, {"mean_accuracy_start": 0.74, "mean_accuracy": 0.70}, status="FAILED")
    runs.stage(default, "hfsl", None, {"mean_accuracy_start": 0.74, "mean_accuracy": 0.77})
    runs.stage(runs.pipeline("default", status="FAILED"), "hfsl", None, {"mean_accuracy_start": 0.7})
    return {
        "table3": table3[1],
        "baselines": baselines[1],
        "hfsl-study": study[1],
        "faults": faults[1],
        "cycles": cycles[1],
        "default": default[1],
    }


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

    assert cells(md, "table3")[1:3] == [f"`{store['table3']}`", "—"]
    assert cells(md, "table3")[-1] == "21 min 30 s"  # the pipeline run's end − start
    assert cells(md, "baselines")[1:4] == [f"`{store['baselines']}`", "—", "FAILED"]
    assert cells(md, "baselines")[5] == "12 (+2 unfinished or rerun, left out)"
    assert cells(md, "default")[1:6] == [
        f"`{store['default']}`",
        "—",
        "FINISHED",
        cells(md, "default")[4],
        "1 hfsl stage run (+1 unfinished or rerun, left out)",
    ]
    for c in range(1, 7):
        ends = [t3_end(c, k) for k in range(REPLICATES)]
        row = cells(md, str(c))
        assert row[1:3] == [mean_std([e - 0.03 for e in ends]), mean_std(ends)]
    ecogen = cells(md, "ecogen")
    end = statistics.mean(BASELINE_ENDS["ecogen"])
    assert ecogen[2] == mean_std(BASELINE_ENDS["ecogen"])
    assert ecogen[3] == f"{end - START_ACC:+.3f} ± {statistics.stdev(BASELINE_ENDS['ecogen']):.3f}"
    assert ecogen[4] == f"{end / statistics.mean(BASELINE_ENDS['centralized']):.3f}"
    assert ecogen[5:7] == ["400.00 kB", "2.00%"]
    assert ecogen[8] == "210 × 16.8k"
    assert ecogen[9] == f"0.0015 ± {statistics.stdev([0.001, 0.002]):.3g}"
    assert cells(md, "pooled-labels")[2] == mean_std(BASELINE_ENDS["pooled-labels"])
    assert cells(md, "splitfed")[1] == "not run"

    study = section(md, "HFSL study")
    assert [line.split("|")[1].strip() for line in study.splitlines()[4:]] == list(STUDY)  # as run
    rounds, starts, ends = STUDY["rounds-5"]
    gains = [e - s for s, e in zip(starts, ends, strict=True)]
    assert cells(study, "rounds-5") == [
        "rounds-5",
        "5",
        mean_std(starts),
        mean_std([e - 0.03 for e in ends]),
        mean_std(ends),
        f"{statistics.mean(gains):+.3f} ± {statistics.stdev(gains):.3f}",  # spread of the replicates' gains
        "315",
        "16.8k",
        "400.00 kB",
        "2",
    ]

    assert [cells(md, t)[-1] for t in TARGETS] == ["**PASS**"] * len(TARGETS)
    assert cells(md, TARGETS[0])[1] == f"start {START_ACC:.3f}, end {end:.3f}: gain {end - START_ACC:+.3f}"
    assert cells(md, TARGETS[8])[1] == "0.770 − 0.740 = +0.030"  # the finished run's finished hfsl
    assert cells(md, TARGETS[9])[1] == "table3 21 min 30 s; baselines 16 min 45 s; hfsl-study 30 min 00 s"
    assert cells(md, TARGETS[12])[1] == "0.766 − 0.759 = +0.007"  # means over the replicates
    assert cells(md, TARGETS[13])[1] == "sign-flip-median +0.013, sign-flip-trimmed +0.016; fedavg +0.305"
    assert cells(md, TARGETS[14])[1] == "110 J (round 3) vs 1010 J (round 3) to reach 0.945: 0.11×"
    energy = section(md, "Energy per method (baselines)")
    assert "| Proposed model (EcoGen) |" in energy and "| fedavg-full | 1000 ± 0 | 10 ± 0 |" in energy

    data = json.loads((out / "report.json").read_text())
    assert data["table3"]["c3"]["accuracy"]["mean"] == pytest.approx(
        statistics.mean([t3_end(3, 0), t3_end(3, 1)])
    )
    assert data["baselines"]["ecogen"]["energy_kwh"]["std"] == pytest.approx(statistics.stdev([0.001, 0.002]))
    assert data["hfsl-study"]["rounds-5"]["gain"] == {
        "mean": pytest.approx(statistics.mean(gains)),
        "std": pytest.approx(statistics.stdev(gains)),
    }
    assert data["default"] == {
        "accuracy_start": 0.74,
        "accuracy": 0.77,
        "gain": pytest.approx(0.03),
    }
    assert data["targets"]["runtime"] == {"status": "PASS", "value": 30.0 * 60, "threshold": 45.0 * 60}
    with (out / "study.csv").open() as f:
        study_rows = list(csv.DictReader(f))
    assert [(r["row"], r["rounds"]) for r in study_rows] == [("rounds-10", "10"), ("rounds-5", "5")]
    assert float(study_rows[1]["gain_std"]) == pytest.approx(statistics.stdev(gains))
    with (out / "accuracy_per_round.csv").open() as f:
        curve = [(r["round"], float(r["accuracy"])) for r in csv.DictReader(f) if r["method"] == "ecogen"]
    expected = [
        START_ACC,
        end - 0.03,
        end - 0.015,
        end,
    ]  # round 0 from mean_accuracy_start; the repeat is dropped
    assert curve == [(str(r), pytest.approx(v)) for r, v in enumerate(expected)]

    client = MlflowClient()
    exp_id = client.get_experiment_by_name(params.tracking.experiment).experiment_id
    (report,) = client.search_runs([exp_id], "tags.`ecogen.kind` = 'report'")
    assert report.info.status == "FINISHED" and report.info.run_name == "report"
    assert report.data.tags[SOURCES] == ",".join(store.values())
    assert report.data.tags[f"{SOURCES}.default"] == store["default"]
    assert report.info.run_id in md
    assert report.data.metrics["target.semi_supervised_gain"] == 1.0
    assert report.data.metrics["target.relay_vs_best_edge"] == 1.0
    assert report.data.metrics["target.hfsl_gain"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(report.info.run_id)}
    assert {
        "report.md",
        "report.json",
        "table3.csv",
        "bytes.csv",
        "study.csv",
        "accuracy_per_round.png",
        "energy.png",
        "relay_cycles.csv",
        "relay_cycles.png",
    } <= artifacts


def test_report_cycles_section_is_the_cycle_runs(
    store: dict[str, str], params: Params, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    md = build_report(params, project, out, pipelines=("cycles",)).read_text()
    header = cells(md, "cycles")
    assert header[1:4] == [f"`{store['cycles']}`", "—", "FINISHED"]
    assert header[5] == "3 cycles (+1 unfinished or rerun, left out)"
    assert header[7] == "dim 32, depth ?, heads ? (1.00 MB)"  # the model size the hfsl stage measured
    relay = section(md, "Knowledge relay (cycles)")
    assert cells(relay, "0") == [
        "0",
        "0.800",
        "0.760",
        "0.765 (invert)",
        "+0.035",
        "+0.040",
        "—",
        "0.880",
        f"{(0.90 + 0.85) / 2:.3f}",
        "14.18 kB of FM 1.00 MB (1.4%)",
        "1.00 MB",
        "50.00 kB",
        "0.0002",
    ]
    assert cells(relay, "1")[1:7] == ["0.820", "0.790", "0.780 (invert)", "+0.040", "+0.030", "0.870"]
    assert cells(relay, "2")[1] == "0.830"
    targets = section(md, "Targets")
    assert [cells(targets, t)[-1] for t in TARGETS[-5:]] == ["**PASS**"] * 5
    assert "0.800 → 0.820 → 0.830" in cells(targets, TARGETS[-3])[1]
    assert "edge-identity cycle 1: 0.898 vs 0.900 = -0.002" in cells(targets, TARGETS[-2])[1]

    data = json.loads((out / "report.json").read_text())
    assert set(data) == {"cycles", "default", "targets"}  # the default chain is always read
    assert data["cycles"]["1"]["fm_mean_accuracy"] == pytest.approx(0.82)
    assert data["cycles"]["2"]["hfsl_edge_accuracy"] == HFSL_EDGES[2]
    assert data["cycles"]["1"]["redelivered_edge_accuracy"] == {"edge-identity": 0.87, "edge-invert": 0.87}
    assert data["targets"]["upload_is_tunable"] == {"status": "PASS", "value": 0.0, "threshold": 0.0}
    with (out / "relay_cycles.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [(r["cycle"], float(r["fm_mean_accuracy"])) for r in lines] == [
        (str(k), pytest.approx(v)) for k, v in enumerate(RELAY_FM)
    ]


def test_missing_pipelines_are_not_run(store: dict[str, str], project: Path, tmp_path: Path) -> None:
    params = Params.model_validate({"tracking": {"experiment": "ecogen-report-empty"}})
    md = build_report(
        params, project, tmp_path / "empty", pipelines=("table3", "baselines", "nope")
    ).read_text()
    assert "_Not run yet: `table3`, `baselines`, `nope`." in md and "## Table 3" not in md
    assert f"_Not run yet ({len(TARGETS)}): " in md and "**not run**" not in md  # no empty rows
    assert json.loads((tmp_path / "empty" / "report.json").read_text())["baselines"] == {"status": "not run"}
    md = build_report(params, project, tmp_path / "default").read_text()  # cycles among the defaults
    assert "`cycles`." in md.split("_Not run yet: ")[1]
    assert json.loads((tmp_path / "default" / "report.json").read_text())["cycles"] == {"status": "not run"}
    assert (tmp_path / "default" / "relay_cycles.png").is_file()


def test_profile_selects_the_runs_made_with_it(project: Path, params: Params, tmp_path: Path) -> None:
    """An older `--profile cpu` run and a newer run as written: the report takes the newest by
    default, and the runs of one profile with ``profile=``."""
    params = Params.model_validate({"tracking": {"experiment": "ecogen-report-profiles"}})
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(uri)
    runs = FakeRuns(client, experiment_id(client, params.tracking.experiment, uri, project))
    cpu = runs.pipeline("table3", profile="cpu")
    runs.trial(cpu, "c1", 0, 0.6, {})
    full = runs.pipeline("table3", profile="none")
    runs.trial(full, "c1", 0, 0.9, {})
    for profile, expected in ((None, full), ("none", full), ("cpu", cpu)):
        md = build_report(params, project, tmp_path / str(profile), ("table3",), profile).read_text()
        assert cells(md, "table3")[1:3] == [f"`{expected[1]}`", profile or "none"], profile
        assert ("made with profile" in md) == (profile is not None)
    md = build_report(params, project, tmp_path / "gpu", ("table3",), "gpu").read_text()
    assert "_Not run yet: `table3`." in md and cells(md, "table3")[1:3] == ["not run", "gpu"]


def test_a_profile_without_chain_runs_reads_the_default_pipeline_as_written(
    project: Path, tmp_path: Path
) -> None:
    """The default pipeline is CPU-sized as written: `--profile cpu` reads that run when the cpu
    profile has none, and says so in its sources; a run of the profile, once there, wins."""
    params = Params.model_validate({"tracking": {"experiment": "ecogen-report-chain-fallback"}})
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(uri)
    runs = FakeRuns(client, experiment_id(client, params.tracking.experiment, uri, project))
    written = runs.pipeline("default", profile="none")
    runs.stage(written, "hfsl", None, {"mean_accuracy_start": 0.70, "mean_accuracy": 0.75})
    md = build_report(params, project, tmp_path / "a", ("table3",), "cpu").read_text()
    assert cells(md, "default")[1:3] == [f"`{written[1]}`", "none"]
    # the default pipeline's own section: its HFSL stage before and after, not "not run" only
    assert f"## `default` pipeline\n\nIts newest finished run (`{written[1]}`)" in md
    assert cells(md, "HFSL's gain") == ["HFSL's gain", "+0.0500"]
    assert cells(md, "after the last round") == ["after the last round", "0.7500"]
    assert json.loads((tmp_path / "a" / "report.json").read_text())["default"]["gain"] == pytest.approx(0.05)
    cpu = runs.pipeline("default", profile="cpu")
    runs.stage(cpu, "hfsl", None, {"mean_accuracy_start": 0.70, "mean_accuracy": 0.72})
    md = build_report(params, project, tmp_path / "b", ("table3",), "cpu").read_text()
    assert cells(md, "default")[1:3] == [f"`{cpu[1]}`", "cpu"]
