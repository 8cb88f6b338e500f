"""The hfsl stage's metrics: one edge's values, and the one-file recipe of docs/extending.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ecogen.config.params import HfslParams
from ecogen.federated.hfsl import HfslOutcome, RoundRecord
from ecogen.stages.hfsl_metrics import (
    CHAIN,
    EDGE_CLIENT_BYTES,
    END,
    REPORT_JSON,
    STUDY,
    edge_metrics,
    link_bytes,
)
from ecogen.stages.result import StageResult, combine


def outcome() -> HfslOutcome:
    def round_(accuracy: float, edge_client: int, d2d: int, images: int) -> RoundRecord:
        moved = {"edge_client/up": edge_client // 4, "edge_client/down": edge_client * 3 // 4}
        moved |= {"d2d/forward": d2d, "cloud_edge/up": 10}
        return RoundRecord(accuracy, moved, steps=7, images=images, aggregated=3, handed_over=0, trained=3)

    return HfslOutcome({}, [round_(0.80, 400, 1000, 60), round_(0.85, 800, 3000, 90)], [])


def test_one_edge_per_round_and_against_fedavg_full() -> None:
    out = outcome()
    assert link_bytes(out, "edge_client") == [400.0, 800.0]
    m = edge_metrics(out, start=0.7, tunable=50, full=1000, h=HfslParams(clusters=3))
    assert m["accuracy_start"] == 0.7 and m["accuracy_first"] == 0.80 and m["accuracy"] == 0.85
    assert m["edge_client_bytes_per_round"] == 600.0 and m["d2d_bytes_per_round"] == 2000.0
    assert m["cloud_edge_bytes_per_round"] == 10.0 and m["client_images_per_round"] == 75.0
    # FedAvg on the full model: down + up of 1000 bytes for each of the 3 clusters, every round
    assert m["fedavg_full_bytes_per_round"] == 6000.0
    assert m["edge_client_bytes_vs_fedavg_full"] == pytest.approx(0.1)
    stage = combine("hfsl", [StageResult("edge-a", m), StageResult("edge-b", dict(m, accuracy=0.95))])
    assert stage.metrics[END.name] == pytest.approx(0.9) and EDGE_CLIENT_BYTES.name in stage.metrics


def test_every_view_shows_declared_metrics_with_a_label_or_column() -> None:
    assert all(m.label for m in CHAIN) and all(m.column for m in STUDY)
    assert [m.key for m in REPORT_JSON][:3] == ["accuracy_start", "accuracy_first", "accuracy"]


# docs/extending.md, "A report metric": the metric declared, given its value and listed in every
# view, in hfsl_metrics.py alone (here: patched before anything else imports it, as an edit of the
# file would be); the report, the DVC columns and the MLflow headline then show it unchanged.
RECIPE = """
from ecogen.stages import hfsl_metrics as h
from ecogen.stages.metric import Metric

EDGE_CLIENT_TOTAL = Metric(
    "edge_client_bytes", "bytes", "edge↔client bytes over all rounds", "Edge↔client total"
)
produce = h.edge_metrics
h.edge_metrics = lambda out, *more: {
    **produce(out, *more), EDGE_CLIENT_TOTAL.key: sum(h.link_bytes(out, "edge_client"))
}
h.REPORT_JSON += (EDGE_CLIENT_TOTAL,)
h.CHAIN += (EDGE_CLIENT_TOTAL,)
h.STUDY += (EDGE_CLIENT_TOTAL,)
h.DVC["total_bytes"] = EDGE_CLIENT_TOTAL
h.HEADLINE += (EDGE_CLIENT_TOTAL,)

from ecogen.config.params import HfslParams
from ecogen.reporting import tables
from ecogen.reporting.summary import Trial, aggregate
from ecogen.stages.dvc_metrics import headline
from ecogen.stages.result import StageResult, combine
from ecogen.tracking.headline import HEADLINE
from test_hfsl_metrics import outcome  # this file: the subprocess runs beside it

edge = h.edge_metrics(outcome(), 0.7, 50, 1000, HfslParams())
stage = combine("hfsl", [StageResult("edge-a", edge), StageResult("edge-b", edge)]).metrics
assert stage["mean_edge_client_bytes"] == 1200.0
assert "| edge↔client bytes over all rounds | 1.20 kB |" in tables.chain_markdown(stage, "default", "r")
study = tables.study_markdown(aggregate([Trial("row", 0, stage)]))
assert "Edge↔client total |" in study and "| 1.20 kB | 1 |" in study
assert tables.stage_json(stage)["edge_client_bytes"] == 1200.0
assert headline("hfsl", stage)["total_bytes"] == 1200.0
assert "mean_edge_client_bytes" in HEADLINE
"""


def test_a_metric_declared_in_hfsl_metrics_alone_reaches_every_view() -> None:
    subprocess.run([sys.executable, "-c", RECIPE], check=True, cwd=Path(__file__).parent)
