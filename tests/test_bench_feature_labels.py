"""benchmarks/feature_labels.py on a tiny prepared and pre-trained digits folder: the counts it
prints add up (kept ≤ unlabelled, right ≤ kept, the pool holds every cluster's unlabelled images)."""

from __future__ import annotations

from pathlib import Path

from test_bench_trials import TINY  # tests/ is on the path of its modules

from benchmarks.feature_labels import main
from ecogen.config.params import Params
from ecogen.stages.prepare import prepare
from ecogen.stages.pretrain import pretrain
from ecogen.workspace import Workspace


def test_feature_label_counts_add_up(tmp_path: Path) -> None:
    params = Params.model_validate({**TINY, "seed": 3})  # benchmarks/trials.py's tiny digits project
    ws = Workspace(tmp_path)
    prepare(params, ws)
    pretrain(params, ws)
    out = main([str(tmp_path), "--keep", "0.5", "1.0", "-k", "3", "--clusters", "2"])[str(tmp_path)]
    federated, pooled = out["federated (edge bank + own labels)"], out["pooled"]
    assert federated["unlabelled"] == pooled["unlabelled"] == 2 * 36  # 48 a cluster, 12 labelled
    for counts in (federated, pooled):
        assert counts["right@0.5"] <= counts["kept@0.5"] <= counts["kept@1.0"] <= counts["unlabelled"]
        assert 0 < counts["kept@0.5"] and counts["vote_right"] <= counts["unlabelled"]
