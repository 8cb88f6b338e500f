"""The closing summary of ``ecogen run``: one row per stage with units, the totals, and how to open
the run in the MLflow UI (instead of every flattened metric, alphabetically)."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run

from ecogen.config.pipelines import STAGE_ORDER
from ecogen.reporting.summary import DASH, format_bytes
from ecogen.stages.hfsl_metrics import EDGE_CLIENT_BYTES, END
from ecogen.stages.metric import DURATION_S, ENERGY_KWH, Metric
from ecogen.tracking.headline import SAVED_VIEW, runs_table_page, view_id
from ecogen.tracking.registry import INCREMENT, STARTED_FROM
from ecogen.tracking.runs import EDGE, KIND, PIPELINE, STAGE
from ecogen.tracking.uri import redact_uri

ACCURACY = (END.name, "fm_mean_accuracy")  # an edge stage's mean over its edges; the relay's FM's


def _logged(runs: list[Run], metric: Metric) -> list[float]:
    return [r.data.metrics[metric.name] for r in runs if metric.name in r.data.metrics]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return [lines[0], "-" * len(lines[0]), *lines[1:]]


def summary_lines(run_id: str, tracking_uri: str) -> list[str]:
    """Stage, runs, time (s), accuracy, energy (kWh), edge↔client bytes per round; then the UI."""
    client = MlflowClient(tracking_uri)
    parent = client.get_run(run_id)
    exp = parent.info.experiment_id
    children = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=5000)
    by_stage: dict[str, list] = defaultdict(list)
    for r in children:
        if r.data.tags.get(KIND) == "stage":
            by_stage[r.data.tags.get(STAGE, r.info.run_name or "?")].append(r)
    rows = [["stage", "runs", "time (s)", "accuracy", "energy (kWh)", "edge↔client / round"]]
    order = STAGE_ORDER
    for stage in sorted(by_stage, key=lambda s: order.index(s) if s in order else len(order)):
        runs = by_stage[stage]
        acc = [r.data.metrics[k] for r in runs for k in ACCURACY if k in r.data.metrics][: len(runs)]
        energy, traffic = _logged(runs, ENERGY_KWH), _logged(runs, EDGE_CLIENT_BYTES)
        rows.append(
            [
                stage,
                str(len(runs)),
                f"{sum(_logged(runs, DURATION_S)):.1f}",
                f"{mean(acc):.4f}" if acc else DASH,
                f"{sum(energy):.3g}" if energy else DASH,
                format_bytes(mean(traffic)) if traffic else DASH,
            ]
        )
    stages = [r for runs in by_stage.values() for r in runs]
    seconds, kwh = sum(_logged(stages, DURATION_S)), sum(_logged(stages, ENERGY_KWH))
    rows.append(["total", str(len(stages)), f"{seconds:.1f}", "", f"{kwh:.3g}" if kwh else DASH, ""])
    pages = [f"#/experiments/{exp}/runs/{run_id}"]
    pipeline = parent.data.tags.get(PIPELINE, "")
    if SAVED_VIEW + view_id(pipeline) in client.get_experiment(exp).tags:  # its headline columns
        pages.append(runs_table_page(exp, pipeline))
    if tracking_uri.startswith(("http://", "https://")):  # a tracking server serves the UI itself
        where = [f"  {redact_uri(tracking_uri).rstrip('/')}/{page}" for page in pages]
    else:
        where = [
            f"  mlflow ui --backend-store-uri {redact_uri(tracking_uri)} --host 127.0.0.1 --port 5000",
            *(f"  http://127.0.0.1:5000/{page}" for page in pages),
        ]
    said = [*_table(rows), *stream_lines(parent, by_stage, client)]
    return [*said, "", f"MLflow run {run_id} (experiment {exp}); to browse and compare runs:", *where]


def stream_lines(parent: Run, by_stage: dict[str, list[Run]], client: MlflowClient) -> list[str]:
    """A stream run's increment, what it started from, each edge's drift and the gate's decisions."""
    tags, params, metrics = parent.data.tags, parent.data.params, parent.data.metrics
    if INCREMENT not in tags:
        return []
    lines = [f"stream: increment {tags[INCREMENT]} taken in, started from {tags.get(STARTED_FROM, DASH)}"]
    threshold = float(params.get("stream.drift_threshold", "nan"))
    finetune = by_stage.get("finetune", [])
    edges = (
        client.search_runs(
            [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{finetune[0].info.run_id}'"
        )
        if finetune
        else []
    )
    scores = sorted(
        (r.data.tags.get(EDGE, "?"), r.data.metrics["drift_score"])
        for r in edges
        if "drift_score" in r.data.metrics
    )
    drifted = [edge for edge, score in scores if score >= threshold]
    if scores:
        said = ", ".join(f"{edge} {score:.3f}" for edge, score in scores)
        lines.append(f"drift (threshold {threshold:.2f}): {said}")
    if drifted:
        response = params.get("stream.on_drift", "none")
        then = "re-fine-tuned before HFSL" if response == "finetune" else "no response (stream.on_drift none)"
        lines.append(f"DRIFT on {', '.join(drifted)}: {then}")
    decided = sorted(k.split(".")[1] for k in metrics if k.startswith("gate.") and k.endswith(".promoted"))
    for domain in decided:
        version = int(metrics[f"gate.{domain}.version"])
        verdict = (
            "promoted to champion" if metrics[f"gate.{domain}.promoted"] else "rejected, the champion stays"
        )
        lines.append(f"gate: edge-{domain} version {version} {verdict}")
    return lines


def summary_markdown(run_id: str) -> str:
    """The closing summary as Markdown (a Prefect artifact): the table, then the run's links."""
    lines = summary_lines(run_id, mlflow.get_tracking_uri())
    end = lines.index("")
    where = [line.strip() for line in lines[end + 2 :]]
    links = [f"- [{w}]({w})" if w.startswith("http") else f"- `{w}`" for w in where]
    return "\n".join(["```", *lines[:end], "```", "", lines[end + 1], "", *links]) + "\n"


def log_summary(run_id: str) -> None:
    """The closing summary as the parent run's ``summary.txt`` artifact (what the terminal shows)."""
    uri = mlflow.get_tracking_uri()
    MlflowClient(uri).log_text(run_id, "\n".join(summary_lines(run_id, uri)) + "\n", "summary.txt")
