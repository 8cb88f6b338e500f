"""benchmarks/bench.py on a tiny model: every part runs and reports what its README promises."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from ecogen.federated.strategies import method_names

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ecogen_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # tiny ops: with more threads than free cores, OpenMP's waiting dominates (tens of times slower)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_split_step_times_both_paths(bench: ModuleType) -> None:
    out = bench.split_step(bench.TINY, repeats=3, batch=8, warmup=1)
    assert out["split_ms"] > 0 and out["unsplit_ms"] > 0
    assert out["ratio"] == pytest.approx(out["split_ms"] / out["unsplit_ms"])
    assert out["repeats"] == 3 and out["ratio_target"] == 1.10


def test_samples_per_s_covers_every_stage(bench: ModuleType) -> None:
    out = bench.samples_per_s(bench.TINY, seconds=0.05)
    for stage in ("pretrain", "finetune", "hfsl", "infer"):
        assert out[stage] > 0
        assert out["batch"][stage] > 0


def test_bytes_per_round_ecogen_sends_less_than_fedavg_full(bench: ModuleType) -> None:
    out = bench.bytes_per_round(bench.TINY, clusters=2, per_cluster=16)
    rows = out["methods"]
    assert set(rows) == set(method_names())  # every strategy file, FedProx included
    assert rows["fedprox"]["edge_client"] == rows["ecogen"]["edge_client"]  # the same links as EcoGen
    assert out["fedavg_full_bytes_per_round"] == rows["fedavg_full"]["edge_client"] > 0
    assert 0 < rows["ecogen"]["edge_client"] < rows["fedavg_full"]["edge_client"]
    assert rows["ecogen"]["d2d"] > 0 and rows["ecogen"]["d2d_bytes_per_image"] > 0
    assert rows["fedavg_full"]["d2d"] == 0  # nothing is split
    assert rows["fedavg_full"]["edge_client_vs_fedavg_full"] == 1.0
    for row in rows.values():
        assert row["total"] == row["edge_client"] + row["d2d"] + row["cloud_edge"]


def test_main_prints_one_json_object(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "bench.json"
    bench.main(["--tiny", "--only", "split_step", "--repeats", "3", "--warmup", "1", "--out", str(out_file)])
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"meta", "split_step"}
    assert printed["meta"]["threads"] > 0 and printed["meta"]["model"]["image_size"] == 8
    assert json.loads(out_file.read_text()) == printed
