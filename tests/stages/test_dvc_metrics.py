"""metrics/dvc/<stage>.json: a few short, shared keys per stage, so `dvc metrics show` stays narrow."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ecogen.stages.dvc_metrics import COLUMNS, headline, write_headline


def test_each_stage_shows_a_few_columns_from_a_small_shared_set() -> None:
    columns = {c for stage in COLUMNS.values() for c in stage}
    assert len(columns) <= 6 and all(len(c) <= 15 for c in columns)
    # the Path column (metrics/dvc/finetune.json), then each column four spaces further
    assert len("metrics/dvc/finetune.json") + sum(4 + max(len(c), 8) for c in columns) <= 120


def test_headline_picks_sums_and_skips_what_is_missing(tmp_path: Path) -> None:
    prepare: dict[str, float | None] = {"images_public": 10, "images_edge": 5, "images_client": 20}
    prepare |= {"images_test": 3, "label_skew": 0.5}
    assert headline("prepare", prepare) == {"images": 38, "label_skew": 0.5}
    assert headline("hfsl", {"mean_accuracy": 0.75, "mean_edge_client_bytes_per_round": math.nan}) == {
        "accuracy": 0.75
    }
    path = write_headline(
        "infer", {"mean_accuracy": 0.5, "edge-a/accuracy": 0.4}, tmp_path / "dvc" / "infer.json"
    )
    assert path == tmp_path / "dvc" / "infer.json"
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
