"""The few numbers per stage that `dvc metrics show` prints: ``metrics/dvc/<stage>.json``.

`dvc metrics show` prints one table, a row per file and a column per key of all files together;
the stages' full metrics (``metrics/<stage>.json``, every edge's too) made that table thousands of
characters wide.  These files share a handful of short keys, so the table stays narrow; the
full files are still there: ``dvc metrics show metrics/hfsl.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from ecogen.stages import hfsl_metrics

# stage → column → the stage metric(s) it shows (several: their sum)
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "prepare": {
        "images": ("images_public", "images_edge", "images_client", "images_test"),
        "label_skew": ("label_skew",),
    },
    "pretrain": {"mae_loss": ("mae_loss",)},
    "finetune": {"accuracy": ("mean_accuracy",)},
    "hfsl": {column: (metric.name,) for column, metric in hfsl_metrics.DVC.items()},
    "relay": {"accuracy": ("fm_mean_accuracy",)},
    "infer": {"accuracy": ("mean_accuracy",), "ms_per_request": ("mean_latency_ms_per_request",)},
}


def headline(stage: str, metrics: Mapping[str, float | None]) -> dict[str, float]:
    """The stage's columns; one whose metrics are missing or NaN is left out."""
    out = {}
    for column, keys in COLUMNS.get(stage, {}).items():
        values = [metrics.get(k) for k in keys]
        if all(v is not None and not math.isnan(v) for v in values):
            out[column] = sum(v for v in values if v is not None)  # counts stay integers
    return out


def write_headline(stage: str, metrics: Mapping[str, float | None], path: Path) -> Path | None:
    """:func:`headline` at ``path`` (a run's numbers as `dvc metrics show` lists them,
    :mod:`ecogen.versioning.shown`); nothing when the stage has none of the columns."""
    numbers = headline(stage, metrics)
    if not numbers:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(numbers, indent=2, sort_keys=True) + "\n")
    return path
