"""The knowledge-relay section: the per-cycle table, CSV, JSON, figure and targets, from literal records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ecogen.reporting import figures, tables
from ecogen.reporting.cycles import Cycle
from ecogen.reporting.targets import (
    check_targets,
    redelivery_no_forgetting,
    relay_non_decreasing,
    relay_vs_best_edge,
    relay_vs_naive,
    upload_is_tunable,
)

FM_BYTES, TUNABLE = 1_000_000.0, 14_184.0


def cycle(
    k: int,
    fm: float,
    naive: float = 0.70,
    best: float = 0.70,
    edges: dict[str, float] | None = None,
    upload: float = TUNABLE,
    **extra: float,
) -> Cycle:
    relay = {
        "fm_mean_accuracy": fm,
        "naive_mean_accuracy": naive,
        "best_edge_mean_accuracy": best,
        "upload_bytes_per_edge": upload,
        "fm_bytes": FM_BYTES,
        "energy_kwh": extra.get("energy", 2e-4),
    }
    finetune = {"mean_accuracy": 0.85, "mean_cloud_edge_down_bytes": FM_BYTES}
    if k >= 1:
        finetune["mean_accuracy_redelivered"] = extra.get("redelivered", 0.84)
    hfsl = {"mean_accuracy": 0.88, "mean_tunable_bytes": TUNABLE, "mean_edge_client_bytes_per_round": 5.0e4}
    return Cycle(k, relay, finetune, hfsl, "invert", edges or {"edge-a": 0.90, "edge-b": 0.86})


def good() -> list[Cycle]:
    return [
        cycle(0, 0.80, naive=0.76, best=0.77),
        cycle(1, 0.82, edges={"edge-a": 0.896, "edge-b": 0.87}),  # edge-a loses 0.004: allowed
        cycle(2, 0.82, edges={"edge-a": 0.91, "edge-b": 0.86}),
    ]


def row(markdown: str, first: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


# --- table, CSV, JSON, figure ----------------------------------------------------------------------


def test_cycles_markdown_one_row_per_cycle_in_order() -> None:
    cycles = good()
    md = tables.cycles_markdown([cycles[2], cycles[0], cycles[1]])
    assert md.startswith("## Knowledge relay (cycles)")
    firsts = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    assert firsts == ["Cycle", "---", "0", "1", "2"]
    assert row(md, "0") == [
        "0",
        "0.800",
        "0.760",
        "0.770 (invert)",
        "+0.030",
        "+0.040",
        "—",  # nothing redelivered before the first relay
        "0.850",
        "0.880",
        "14.18 kB of FM 1.00 MB (1.4%)",
        "1.00 MB",
        "50.00 kB",
        "0.0002",
    ]
    assert row(md, "1")[6] == "0.840"


def test_cycles_markdown_not_run_and_missing_stages() -> None:
    assert "_not run: no finished `cycles` pipeline run._" in tables.cycles_markdown(None)
    assert "| not run |" in tables.cycles_markdown([])
    md = tables.cycles_markdown([Cycle(0, hfsl={"mean_accuracy": 0.9})])  # relay never finished
    assert row(md, "0") == ["0", "—", "—", "—", "—", "—", "—", "—", "0.900", "—", "—", "—", "—"]


def test_cycles_csv_json_and_figure(tmp_path: Path) -> None:
    with tables.cycles_csv(good(), tmp_path / "relay_cycles.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [r["cycle"] for r in lines] == ["0", "1", "2"]
    assert float(lines[1]["fm_mean_accuracy"]) == 0.82 and lines[0]["redelivered_accuracy"] == ""
    assert float(lines[0]["upload_bytes_per_edge"]) == TUNABLE and lines[0]["best_edge"] == "invert"
    with tables.cycles_csv(None, tmp_path / "empty.csv").open() as f:
        assert f.read().startswith("cycle,fm_mean_accuracy,naive_mean_accuracy,best_edge_mean_accuracy")

    data = tables.cycles_json(good())
    assert list(data) == ["0", "1", "2"]
    assert data["0"]["fm_vs_naive"] == pytest.approx(0.04) and "redelivered_accuracy" not in data["0"]
    assert data["1"]["hfsl_edge_accuracy"] == {"edge-a": 0.896, "edge-b": 0.87}
    assert tables.cycles_json(None) == {"status": "not run"}
    path = tables.report_json({}, check_targets(None, None, good()), tmp_path / "r.json", {"cycles": data})
    written = json.loads(path.read_text())
    assert written["cycles"]["2"]["fm_mean_accuracy"] == 0.82
    assert written["targets"]["relay_vs_naive"]["status"] == "PASS"

    for cycles in (good(), None):
        png = figures.relay_cycles(cycles, tmp_path / f"relay_{cycles is None}.png")
        assert png.read_bytes()[:4] == b"\x89PNG"


# --- targets -------------------------------------------------------------------------------------


def test_first_relay_vs_best_edge_and_naive() -> None:
    ok = relay_vs_best_edge(good())  # 0.80 − 0.77 = 0.03 exactly: meets the bar
    assert ok.status == "PASS" and ok.value == pytest.approx(0.03) and "(invert)" in ok.measured
    assert relay_vs_naive(good()).status == "PASS"
    close = [cycle(0, 0.80, naive=0.785, best=0.775), cycle(1, 0.95, naive=0.5, best=0.5)]
    assert relay_vs_best_edge(close).status == "MISS"  # only cycle 0 counts, not a later better one
    miss = relay_vs_naive(close)
    assert miss.status == "MISS" and miss.value == pytest.approx(0.015)
    for check in (relay_vs_best_edge, relay_vs_naive):
        assert check(None).status == "not run"
        assert check([cycle(1, 0.9)]).status == "not run"  # no cycle 0


def test_fm_non_decreasing_over_cycles() -> None:
    assert relay_non_decreasing(good()).status == "PASS"
    drop = relay_non_decreasing([cycle(0, 0.80), cycle(1, 0.83), cycle(2, 0.825)])
    assert drop.status == "MISS" and drop.value == pytest.approx(-0.005) and "1→2" in drop.measured
    assert relay_non_decreasing([cycle(0, 0.8)]).status == "not run"


def test_no_edge_forgets_after_redelivery() -> None:
    ok = redelivery_no_forgetting(good())
    assert ok.status == "PASS" and ok.value == pytest.approx(-0.004) and "edge-a cycle 1" in ok.measured
    forgot = [cycle(0, 0.8), cycle(1, 0.8), cycle(2, 0.8, edges={"edge-a": 0.90, "edge-b": 0.854})]
    miss = redelivery_no_forgetting(forgot)
    assert miss.status == "MISS" and miss.value == pytest.approx(-0.006) and "edge-b cycle 2" in miss.measured
    assert redelivery_no_forgetting([cycle(0, 0.8)]).status == "not run"
    assert redelivery_no_forgetting([cycle(1, 0.8), cycle(2, 0.8)]).status == "not run"


def test_upload_is_tunable_bytes_beside_the_fm() -> None:
    ok = upload_is_tunable(good())
    assert ok.status == "PASS" and ok.value == 0.0
    assert "14.18 kB = 14.18 kB" in ok.measured and "FM 1.00 MB" in ok.measured
    miss = upload_is_tunable([cycle(0, 0.8), cycle(1, 0.8, upload=FM_BYTES)])
    assert miss.status == "MISS" and "cycle 1" in miss.measured
    assert upload_is_tunable(None).status == "not run"


def test_check_targets_lists_the_relay_targets_after_the_others() -> None:
    checks = check_targets(None, None, good())
    assert [c.key for c in checks][-5:] == [
        "relay_vs_best_edge",
        "relay_vs_naive",
        "relay_non_decreasing",
        "redelivery_no_forgetting",
        "upload_is_tunable",
    ]
    assert [c.status for c in checks] == ["not run"] * (len(checks) - 5) + ["PASS"] * 5
