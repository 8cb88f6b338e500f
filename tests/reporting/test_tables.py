"""Aggregation over replicates, target checks and the report's tables, from literal numbers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from ecogen.reporting import paper, tables
from ecogen.reporting.summary import (
    CENTRALIZED,
    ECOGEN,
    EDGE_CLIENT_BYTES,
    END,
    FEDAVG_FULL,
    FEDAVG_FULL_BYTES,
    FIRST,
    LABELS_ONLY,
    RowSummary,
    Stat,
    Trial,
    aggregate,
    summarize,
)
from ecogen.reporting.targets import (
    check_targets,
    communication,
    ecogen_vs_oracle,
    end_above_first,
    end_non_decreasing,
    semi_supervised_gain,
)


def rows(spec: dict[str, list[dict[str, float]]], params: dict[str, dict[str, str]] | None = None):
    """``{row: [metrics of replicate 0, of replicate 1, ...]}`` → aggregated rows."""
    params = params or {}
    return aggregate(
        Trial(row, k, metrics, params.get(row, {}))
        for row, reps in spec.items()
        for k, metrics in enumerate(reps)
    )


def table3(ends: dict[int, list[float]], firsts: dict[int, list[float]] | None = None):
    firsts = firsts or {c: [v - 0.02 for v in vs] for c, vs in ends.items()}
    spec = {
        f"c{c}": [{FIRST: f, END: e} for f, e in zip(firsts[c], vs, strict=True)] for c, vs in ends.items()
    }
    return rows(spec, {f"c{c}": {"hfsl.clusters": str(c)} for c in ends})


# --- mean ± sample std -------------------------------------------------------------------------


def test_summarize_uses_sample_std() -> None:
    stat = summarize([0.90, 0.92, 0.94])
    assert stat is not None
    assert stat.mean == pytest.approx(0.92) and stat.std == pytest.approx(0.02) and stat.n == 3
    assert stat.format() == "0.920 ± 0.020"


def test_one_replicate_has_no_spread_and_nothing_is_none() -> None:
    one = summarize([0.955])
    assert one == Stat(0.955, 0.0, 1) and one.format() == "0.955 ± —"
    assert summarize([]) is None
    assert summarize([math.nan]) is None
    assert summarize([1.0, math.nan, 3.0]) == Stat(2.0, pytest.approx(math.sqrt(2)), 2)


def test_aggregate_groups_rows_curves_and_shared_params() -> None:
    trials = [
        Trial("a", 0, {END: 0.5}, {"hfsl.method": "x", "replicate": "0"}, {0: 0.1, 1: 0.3, 2: 0.5}),
        Trial("a", 1, {END: 0.7, FIRST: 0.2}, {"hfsl.method": "x", "replicate": "1"}, {0: 0.1, 1: 0.5}),
        Trial("b", 0, {END: 0.9}),
    ]
    out = aggregate(trials)
    assert list(out) == ["a", "b"]
    a = out["a"]
    assert a.replicates == 2
    assert a.stat(END) == Stat(pytest.approx(0.6), pytest.approx(math.sqrt(0.02)), 2)
    assert a.stat(FIRST) == Stat(0.2, 0.0, 1)  # only one replicate logged it
    assert a.curve[1] == Stat(pytest.approx(0.4), pytest.approx(math.sqrt(0.02)), 2)
    assert a.curve[2] == Stat(0.5, 0.0, 1)
    assert a.params == {"hfsl.method": "x"}  # the replicate param differs, so it is not shared
    assert out["b"].mean(END) == 0.9 and out["b"].mean(FIRST) is None


def test_clusters_from_param_or_row_name() -> None:
    out = rows({"c4": [{END: 1.0}], "x": [{END: 1.0}], "y": [{END: 1.0}]}, {"x": {"hfsl.clusters": "2"}})
    assert out["c4"].clusters == 4 and out["x"].clusters == 2 and out["y"].clusters is None


# --- targets -----------------------------------------------------------------------------------


def baselines(**ends: float) -> dict[str, RowSummary]:
    names = {"ecogen": ECOGEN, "labels": LABELS_ONLY, "oracle": CENTRALIZED, "full": FEDAVG_FULL}
    return rows({names[k]: [{END: v}] for k, v in ends.items()})


def test_ecogen_vs_oracle_pass_miss_not_run() -> None:
    ok = ecogen_vs_oracle(baselines(ecogen=0.95, oracle=1.0))
    assert ok.status == "PASS" and ok.value == pytest.approx(0.95)
    assert ecogen_vs_oracle(baselines(ecogen=0.94, oracle=1.0)).status == "MISS"
    assert ecogen_vs_oracle(baselines(ecogen=0.94)).status == "not run"
    assert ecogen_vs_oracle(None).status == "not run"


def test_end_above_first_in_every_row() -> None:
    good = table3({1: [0.95, 0.96], 2: [0.96, 0.97]})
    assert end_above_first(good).status == "PASS"
    bad = table3({1: [0.95], 2: [0.96]}, firsts={1: [0.94], 2: [0.96]})  # c2 did not improve
    check = end_above_first(bad)
    assert check.status == "MISS" and check.value == pytest.approx(0.0) and "c2" in check.measured
    assert end_above_first(None).status == "not run"


def test_non_decreasing_within_one_std() -> None:
    # c2 mean drops by 0.009 with max std 0.01 → allowed; the rule is end[b] ≥ end[a] − max(std a, std b).
    base = {1: [0.95, 0.97], 3: [0.97, 0.99]}  # c1: 0.960 ± 0.0141
    assert end_non_decreasing(table3({**base, 2: [0.951, 0.951]})).status == "PASS"
    drop = end_non_decreasing(table3({**base, 2: [0.945, 0.945]}))  # 0.945 < 0.960 − 0.0141
    assert drop.status == "MISS" and drop.value is not None and drop.value < 0
    assert "1→2" in drop.measured
    # one replicate: no spread, so any drop is a miss; a rise passes
    assert end_non_decreasing(table3({1: [0.96], 2: [0.959]})).status == "MISS"
    assert end_non_decreasing(table3({1: [0.96], 2: [0.96]})).status == "PASS"
    assert end_non_decreasing(table3({1: [0.96]})).status == "not run"


def test_non_decreasing_is_ordered_by_clusters_not_row_order() -> None:
    rows_out_of_order = table3({3: [0.97], 1: [0.95], 2: [0.96]})
    assert end_non_decreasing(rows_out_of_order).status == "PASS"


def bytes_rows(ours: float, full: float | None, end_ours: float = 0.9, end_full: float = 0.9):
    spec = {ECOGEN: [{EDGE_CLIENT_BYTES: ours, END: end_ours, FEDAVG_FULL_BYTES: 1000.0}]}
    if full is not None:
        spec[FEDAVG_FULL] = [{EDGE_CLIENT_BYTES: full, END: end_full}]
    return rows(spec)


def test_communication_bytes_and_accuracy() -> None:
    ok = communication(bytes_rows(ours=50.0, full=2000.0))
    assert ok.status == "PASS" and ok.value == pytest.approx(0.025)
    assert communication(bytes_rows(ours=150.0, full=2000.0)).status == "MISS"  # 7.5 %
    assert communication(bytes_rows(ours=50.0, full=2000.0, end_full=0.91)).status == "MISS"  # less accurate
    assert communication(None).status == "not run"


def test_communication_falls_back_to_the_computed_fedavg_cost() -> None:
    # no fedavg-full row: the reference is the ecogen run's own mean_fedavg_full_bytes_per_round (1000)
    cheap = communication(bytes_rows(ours=40.0, full=None))
    assert cheap.value == pytest.approx(0.04) and cheap.status == "not run"  # accuracy side missing
    assert communication(bytes_rows(ours=60.0, full=None)).status == "MISS"  # too many bytes either way


def test_semi_supervised_gain() -> None:
    assert semi_supervised_gain(baselines(ecogen=0.95, labels=0.93)).status == "PASS"
    miss = semi_supervised_gain(baselines(ecogen=0.95, labels=0.94))
    assert miss.status == "MISS" and miss.value == pytest.approx(0.01)
    assert semi_supervised_gain(baselines(ecogen=0.95)).status == "not run"


def test_check_targets_without_any_run_is_all_not_run() -> None:
    checks = check_targets(None, None, None)
    assert len(checks) == 10 and {c.status for c in checks} == {"not run"}


# --- tables ------------------------------------------------------------------------------------


def test_table3_markdown_beside_paper_and_not_run() -> None:
    md = tables.table3_markdown(table3({1: [0.95, 0.97], 2: [0.96, 0.96]}))
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "0.960 ± 0.014" in lines["1"] and f"{paper.TABLE3_END[1]:.3f}" in lines["1"]
    assert "0.960 ± 0.000" in lines["2"]
    assert "not run" in lines["6"] and f"{paper.TABLE3_FIRST[6]:.3f}" in lines["6"]
    assert "not run" in tables.table3_markdown(None)


def test_baselines_markdown_ratio_bytes_and_missing_rows() -> None:
    out = rows(
        {
            ECOGEN: [{END: 0.9, FIRST: 0.8, EDGE_CLIENT_BYTES: 1.5e6}],
            CENTRALIZED: [{END: 1.0}],
            FEDAVG_FULL: [{END: 0.9, EDGE_CLIENT_BYTES: 3e7}],
        }
    )
    md = tables.baselines_markdown(out)
    ecogen = next(line for line in md.splitlines() if line.startswith("| ecogen |"))
    cells = [c.strip() for c in ecogen.strip("|").split("|")]
    assert cells[1:6] == ["0.800 ± —", "0.900 ± —", "0.900", "1.50 MB", "5.00%"]
    assert "| splitfed | not run |" in md
    assert "not run" in tables.baselines_markdown(None)


def test_format_bytes_and_section() -> None:
    assert tables.format_bytes(512) == "512 B" and tables.format_bytes(6_869_472) == "6.87 MB"
    assert tables.format_bytes(None) == "—"
    md = "# T\n\n## A\n\nx\n\n## Targets\n\n| a |\n\n## Z\n"
    assert tables.section(md, "Targets") == "## Targets\n\n| a |"
    assert tables.section(md, "missing") == ""


def test_csv_and_json_outputs(tmp_path: Path) -> None:
    t3 = table3({1: [0.95, 0.97], 2: [0.96, 0.96]})
    base = aggregate(
        [
            Trial(ECOGEN, k, {END: 0.9 + k / 100, EDGE_CLIENT_BYTES: 10.0}, {}, {1: 0.5, 2: 0.9 + k / 100})
            for k in (0, 1)
        ]
    )
    with tables.table3_csv(t3, tmp_path / "table3.csv").open() as f:
        t3_rows = list(csv.DictReader(f))
    assert [r["clusters"] for r in t3_rows] == ["1", "2"]
    assert float(t3_rows[0]["end"]) == pytest.approx(0.96) and float(t3_rows[0]["end_std"]) == pytest.approx(
        0.0141421
    )
    assert float(t3_rows[0]["paper_end"]) == paper.TABLE3_END[1]
    with tables.accuracy_csv(base, tmp_path / "acc.csv").open() as f:
        acc = list(csv.DictReader(f))
    assert list(acc[0]) == ["method", "round", "accuracy"]
    assert [(r["round"], float(r["accuracy"])) for r in acc] == [("1", 0.5), ("2", pytest.approx(0.905))]
    checks = check_targets(t3, base)
    data = json.loads(
        tables.report_json(
            {"table3": t3, "baselines": base, "other": None}, checks, tmp_path / "r.json"
        ).read_text()
    )
    assert data["table3"]["c1"]["accuracy"]["mean"] == pytest.approx(0.96)
    assert data["table3"]["c1"]["clusters"] == 1 and "clusters" not in data["baselines"][ECOGEN]
    assert data["other"] == {"status": "not run"}
    assert data["targets"]["end_above_first"] == {
        "status": "PASS",
        "value": pytest.approx(0.02),
        "threshold": 0.0,
    }
    assert data["targets"]["ecogen_vs_oracle"] == {"status": "not run"}
