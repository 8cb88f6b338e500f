"""Aggregation over replicates, target checks and the report's tables, from literal numbers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from ecogen.reporting import paper, tables
from ecogen.reporting.summary import (
    BASELINE_ROWS,
    CENTRALIZED,
    ECOGEN,
    EDGE_ALONE,
    FEDAVG_FULL,
    POOLED_LABELS,
    SEMI_SUPERVISED,
    RowSummary,
    Stat,
    Trial,
    aggregate,
    format_count,
    format_duration,
    summarize,
)
from ecogen.reporting.targets import (
    SEMI_SUPERVISED_GAIN,
    check_targets,
    clusters_worth_having,
    communication,
    default_hfsl_gain,
    dropout_cost,
    ecogen_vs_oracle,
    end_above_first,
    end_non_decreasing,
    hfsl_gain,
    labels_only_vs_central,
    oracle_converged,
    robust_aggregation,
    runtime,
    semi_supervised_gain,
    table3_clusters_gain,
)
from ecogen.stages.hfsl_metrics import (
    CLIENT_IMAGES,
    CLIENT_STEPS,
    EDGE_CLIENT_BYTES,
    END,
    FEDAVG_FULL_BYTES,
    FIRST,
    GAIN,
    START,
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
        f"c{c}": [{FIRST.name: f, END.name: e} for f, e in zip(firsts[c], vs, strict=True)]
        for c, vs in ends.items()
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
        Trial("a", 0, {END.name: 0.5}, {"hfsl.method": "x", "replicate": "0"}, {0: 0.1, 1: 0.3, 2: 0.5}),
        Trial(
            "a", 1, {END.name: 0.7, FIRST.name: 0.2}, {"hfsl.method": "x", "replicate": "1"}, {0: 0.1, 1: 0.5}
        ),
        Trial("b", 0, {END.name: 0.9}),
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


def test_a_row_pools_its_replicates_over_fm_draws() -> None:
    # the same seed on two FMs is two replicates: the spread is over draws × seeds
    out = aggregate(
        [Trial("a", r, {END.name: 0.7 + 0.1 * d + 0.01 * r}, draw=d) for d in (0, 1) for r in (0, 1)]
    )
    assert (out["a"].replicates, out["a"].draws) == (4, 2)
    assert out["a"].stat(END) == Stat(pytest.approx(0.755), pytest.approx(0.0580, abs=1e-4), 4)
    assert aggregate([Trial("b", 0, {END.name: 0.7})])["b"].draws == 1


def test_gain_is_derived_per_replicate() -> None:
    # gains 0.05 and 0.03: their spread (0.014), not one made from the END and START spreads
    out = aggregate(
        [
            Trial("a", 0, {START.name: 0.70, END.name: 0.75}),
            Trial("a", 1, {START.name: 0.74, END.name: 0.77}),
            Trial("a", 2, {END.name: 0.99}),  # no start: no gain from this replicate
            Trial("b", 0, {END.name: 0.8}),
        ]
    )
    assert out["a"].stat(GAIN) == Stat(pytest.approx(0.04), pytest.approx(math.sqrt(2e-4)), 2)
    assert out["a"].gain() == pytest.approx(0.04)
    assert out["b"].stat(GAIN) is None and out["b"].gain() is None
    built = RowSummary("c", 1, {START.name: Stat(0.7, 0.0, 1), END.name: Stat(0.75, 0.0, 1)}, {}, {})
    assert built.gain() == pytest.approx(0.05)  # no per-replicate gain: from the means


def test_rounds_from_the_shared_param() -> None:
    out = rows({"a": [{END.name: 1.0}], "b": [{END.name: 1.0}]}, {"a": {"hfsl.rounds": "5"}})
    assert out["a"].rounds == 5 and out["b"].rounds is None


def test_count_duration_and_signed_formats() -> None:
    assert [format_count(v) for v in (210.0, 999.0, 16_800.0, 168_000.0, 1.5e6, None)] == [
        "210",
        "999",
        "16.8k",
        "168k",
        "1.5M",
        "—",
    ]
    assert [format_duration(v) for v in (45.0, 1290.0, 2700.0, 3720.0, None)] == [
        "45 s",
        "21 min 30 s",
        "45 min 00 s",
        "1 h 02 min",
        "—",
    ]
    assert Stat(0.031, 0.004, 3).format(signed=True) == "+0.031 ± 0.004"
    assert Stat(-0.002, 0.0, 1).format(signed=True) == "-0.002 ± —"


def test_pooled_labels_and_the_edge_alone_are_baseline_rows_after_the_ecogen_rows() -> None:
    assert (
        BASELINE_ROWS[:4]
        == (ECOGEN, SEMI_SUPERVISED, POOLED_LABELS, EDGE_ALONE)
        == ("ecogen", "ecogen-ssl", "pooled-labels", "edge-alone")
    )


def test_clusters_from_param_or_row_name() -> None:
    out = rows(
        {"c4": [{END.name: 1.0}], "x": [{END.name: 1.0}], "y": [{END.name: 1.0}]},
        {"x": {"hfsl.clusters": "2"}},
    )
    assert out["c4"].clusters == 4 and out["x"].clusters == 2 and out["y"].clusters is None


# --- targets -----------------------------------------------------------------------------------


def baselines(**ends: float) -> dict[str, RowSummary]:
    names = {
        "ecogen": ECOGEN,
        "ssl": SEMI_SUPERVISED,
        "pooled": POOLED_LABELS,
        "alone": EDGE_ALONE,
        "oracle": CENTRALIZED,
        "full": FEDAVG_FULL,
    }
    return rows({names[k]: [{END.name: v}] for k, v in ends.items()})


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
    spec = {ECOGEN: [{EDGE_CLIENT_BYTES.name: ours, END.name: end_ours, FEDAVG_FULL_BYTES.name: 1000.0}]}
    if full is not None:
        spec[FEDAVG_FULL] = [{EDGE_CLIENT_BYTES.name: full, END.name: end_full}]
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
    assert SEMI_SUPERVISED_GAIN == 0.015
    assert semi_supervised_gain(baselines(ssl=0.955, ecogen=0.94)).status == "PASS"  # exactly 1.5 points
    miss = semi_supervised_gain(baselines(ssl=0.95, ecogen=0.94))
    assert miss.status == "MISS" and miss.value == pytest.approx(0.01) and miss.threshold == 0.015
    assert semi_supervised_gain(baselines(ecogen=0.95)).status == "not run"


def ecogen_row(*replicates: tuple[float, float]) -> dict[str, RowSummary]:
    """The baselines ecogen row from ``(start, end)`` per replicate."""
    return rows({ECOGEN: [{START.name: s, END.name: e} for s, e in replicates]})


def test_hfsl_gain_needs_both_the_gain_and_the_start() -> None:
    ok = hfsl_gain(ecogen_row((0.735, 0.770), (0.745, 0.775)))  # gains 0.035 and 0.030
    assert ok.status == "PASS" and ok.value == pytest.approx(0.0325) and ok.threshold == 0.03
    assert ok.measured == "start 0.740, end 0.772: gain +0.033"
    small = hfsl_gain(ecogen_row((0.740, 0.765)))
    assert small.status == "MISS" and small.value == pytest.approx(0.025)
    weak_start = hfsl_gain(ecogen_row((0.700, 0.760)))  # +0.060, but from a weaker edge model
    assert weak_start.status == "MISS" and weak_start.value == pytest.approx(0.06)
    assert hfsl_gain(baselines(ecogen=0.95)).status == "not run"  # no start logged
    assert hfsl_gain(None).status == "not run"


def test_labels_only_within_reach_of_pooled_labels() -> None:
    ok = labels_only_vs_central(baselines(ecogen=0.74, pooled=0.755))  # exactly 1.5 points
    assert ok.status == "PASS" and ok.value == pytest.approx(0.015)
    assert ok.measured == "0.755 − 0.740 = +0.015"
    assert labels_only_vs_central(baselines(ecogen=0.76, pooled=0.75)).status == "PASS"  # ahead of it
    miss = labels_only_vs_central(baselines(ecogen=0.74, pooled=0.76))
    assert miss.status == "MISS" and miss.value == pytest.approx(0.02)
    assert labels_only_vs_central(baselines(ecogen=0.74)).status == "not run"


def test_clusters_worth_having_over_the_edge_alone() -> None:
    ok = clusters_worth_having(baselines(ecogen=0.76, alone=0.74))  # exactly 2 points
    assert ok.status == "PASS" and ok.value == pytest.approx(0.02) and ok.threshold == 0.02
    assert ok.measured == "0.760 − 0.740 = +0.020"
    miss = clusters_worth_having(baselines(ecogen=0.76, alone=0.75))
    assert miss.status == "MISS" and miss.value == pytest.approx(0.01)
    assert clusters_worth_having(baselines(ecogen=0.76)).status == "not run"


def test_table3_most_vs_fewest_clusters() -> None:
    ok = table3_clusters_gain(table3({3: [0.94], 1: [0.92], 6: [0.95]}))  # by clusters, not row order
    assert ok.status == "PASS" and ok.value == pytest.approx(0.03)
    assert ok.measured == "6 vs 1 clusters: 0.950 − 0.920 = +0.030"
    miss = table3_clusters_gain(table3({1: [0.92, 0.93], 6: [0.935, 0.94]}))  # +0.0125
    assert miss.status == "MISS" and miss.value == pytest.approx(0.0125)
    assert table3_clusters_gain(table3({1: [0.92]})).status == "not run"
    assert table3_clusters_gain(None).status == "not run"


def oracle(*curve: float) -> dict[str, RowSummary]:
    """A centralized row with the accuracy curve ``curve`` (round 0 = before training)."""
    return aggregate([Trial(CENTRALIZED, 0, {END.name: curve[-1]}, {}, dict(enumerate(curve)))])


def test_oracle_converged_reads_the_last_two_rounds() -> None:
    ok = oracle(0.70, 0.76, 0.775, 0.777)
    check = oracle_converged(ok)
    assert check.status == "PASS" and check.value == pytest.approx(0.002)
    assert check.measured == "round 2 0.775 → round 3 0.777 (+0.002)"
    assert oracle_converged(oracle(0.70, 0.78, 0.777)).status == "PASS"  # a last-round dip
    climbing = oracle_converged(oracle(0.70, 0.76, 0.77))
    assert climbing.status == "MISS" and climbing.value == pytest.approx(0.01)
    # 0.003 is not < 0.003, even where the float difference rounds below it (0.002999...)
    assert 0.103 - 0.100 < 0.003 and oracle_converged(oracle(0.05, 0.100, 0.103)).status == "MISS"
    assert oracle_converged(oracle(0.70, 0.74, 0.743)).status == "MISS"
    assert oracle_converged(oracle(0.70)).status == "not run"
    assert oracle_converged(baselines(ecogen=0.9)).status == "not run"


def test_default_hfsl_gain() -> None:
    ok = default_hfsl_gain({START.name: 0.69, END.name: 0.71})
    assert ok.status == "PASS" and ok.value == pytest.approx(0.02) and ok.measured == "0.710 − 0.690 = +0.020"
    below = default_hfsl_gain({START.name: 0.69, END.name: 0.705})
    assert below.status == "MISS" and below.value == pytest.approx(0.015)
    assert default_hfsl_gain({START.name: 0.694, END.name: 0.689}).status == "MISS"
    assert default_hfsl_gain({END.name: 0.71}).status == "not run"
    assert default_hfsl_gain(None).status == "not run"


def test_runtime_of_each_experiment_pipeline() -> None:
    ok = runtime({"table3": 1290.0, "baselines": 1004.0, "cycles": 9999.0})  # cycles is not timed
    assert ok.status == "PASS" and ok.value == 1290.0 and ok.threshold == 2700.0
    assert ok.measured == "table3 21 min 30 s; baselines 16 min 44 s; hfsl-study not run"
    miss = runtime({"table3": 1290.0, "hfsl-study": 2701.0})
    assert miss.status == "MISS" and miss.value == 2701.0
    assert runtime({"table3": None, "cycles": 60.0}).status == "not run"
    assert runtime(None).status == "not run"


def faults(**ends: float) -> dict[str, RowSummary]:
    return rows({row.replace("_", "-"): [{END.name: v}] for row, v in ends.items()})


def test_dropout_costs_at_most_a_point() -> None:
    ok = dropout_cost(faults(clean=0.765, dropout_30_hand_over=0.756))
    assert ok.status == "PASS" and ok.measured == "0.765 − 0.756 = +0.009"
    assert dropout_cost(faults(clean=0.765, dropout_30_hand_over=0.754)).status == "MISS"
    assert dropout_cost(faults(clean=0.765, dropout_30=0.765)).status == "not run"  # sit_out's row
    assert dropout_cost(faults(clean=0.765)).status == "not run"


def test_robust_rules_near_clean_and_fedavg_not() -> None:
    ends = {"clean": 0.765, "sign_flip_fedavg": 0.459, "sign_flip_median": 0.750, "sign_flip_trimmed": 0.746}
    ok = robust_aggregation(faults(**ends))
    assert ok.status == "PASS" and ok.value == pytest.approx(0.019)
    assert ok.measured == "sign-flip-median +0.015, sign-flip-trimmed +0.019; fedavg +0.306"
    assert robust_aggregation(faults(**{**ends, "sign_flip_trimmed": 0.740})).status == "MISS"
    # an attack FedAvg shrugs off shows nothing about the robust rules
    assert robust_aggregation(faults(**{**ends, "sign_flip_fedavg": 0.76})).status == "MISS"
    assert robust_aggregation(faults(clean=0.765, sign_flip_median=0.75)).status == "not run"


def test_check_targets_without_any_run_is_all_not_run() -> None:
    checks = check_targets(None, None, None)
    assert [c.key for c in checks] == [
        "hfsl_gain",
        "labels_only_vs_central",
        "clusters_worth_having",
        "semi_supervised_gain",
        "end_above_first",
        "table3_clusters_gain",
        "ecogen_vs_oracle",
        "oracle_converged",
        "default_hfsl_gain",
        "runtime",
        "communication",
        "end_non_decreasing",
        "dropout_cost",
        "robust_aggregation",
        "energy",
        "relay_vs_best_edge",
        "relay_vs_naive",
        "relay_non_decreasing",
        "redelivery_no_forgetting",
        "upload_is_tunable",
    ]
    assert {c.status for c in checks} == {"not run"}


def test_check_targets_reads_the_default_chain_and_wall_times() -> None:
    checks = {
        c.key: c
        for c in check_targets(
            None, None, default={START.name: 0.7, END.name: 0.75}, wall_times={"baselines": 3000.0}
        )
    }
    assert checks["default_hfsl_gain"].status == "PASS" and checks["runtime"].status == "MISS"


# --- tables ------------------------------------------------------------------------------------


def test_table3_markdown_beside_paper_and_not_run() -> None:
    md = tables.table3_markdown(table3({1: [0.95, 0.97], 2: [0.96, 0.96]}))
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "0.960 ± 0.014" in lines["1"] and f"{paper.TABLE3_END[1]:.3f}" in lines["1"]
    assert "0.960 ± 0.000" in lines["2"]
    assert "not run" in lines["6"] and f"{paper.TABLE3_FIRST[6]:.3f}" in lines["6"]
    assert "not run" in tables.table3_markdown(None)


def md_cells(md: str, first_cell: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_baselines_markdown_ratio_bytes_and_missing_rows() -> None:
    compute = {CLIENT_STEPS.name: 210.0, CLIENT_IMAGES.name: 16_800.0}
    out = rows(
        {
            ECOGEN: [
                {START.name: 0.75, END.name: 0.9, FIRST.name: 0.8, EDGE_CLIENT_BYTES.name: 1.5e6, **compute},
                {START.name: 0.77, END.name: 0.9, FIRST.name: 0.8, EDGE_CLIENT_BYTES.name: 1.5e6, **compute},
            ],
            CENTRALIZED: [{END.name: 1.0}],
            FEDAVG_FULL: [{END.name: 0.9, EDGE_CLIENT_BYTES.name: 3e7, CLIENT_STEPS.name: 1200.0}],
        }
    )
    md = tables.baselines_markdown(out)
    assert "| Gain vs start |" in md and "| Client compute (steps × images per round) |" in md
    cells = md_cells(md, "ecogen")
    assert cells[1:9] == [
        "0.800 ± 0.000",
        "0.900 ± 0.000",
        "+0.140 ± 0.014",  # gains 0.15 and 0.13
        "0.900",
        "1.50 MB",
        "5.00%",
        "—",
        "210 × 16.8k",
    ]
    full = md_cells(md, "fedavg-full")
    assert full[3] == "—" and full[8] == "1.2k × —"  # no start: no gain; images not logged
    assert md_cells(md, "centralized")[8] == "—"
    assert md_cells(md, "pooled-labels")[1] == "not run" and len(md_cells(md, "pooled-labels")) == len(cells)
    assert "| splitfed | not run |" in md
    assert "not run" in tables.baselines_markdown(None)


def test_study_markdown_in_run_order_with_per_replicate_gain() -> None:
    study = aggregate(
        [
            Trial(
                "z-long",
                0,
                {START.name: 0.70, FIRST.name: 0.72, END.name: 0.76, CLIENT_STEPS.name: 420.0},
                {"hfsl.rounds": "10"},
            ),
            Trial(
                "z-long",
                1,
                {START.name: 0.72, FIRST.name: 0.73, END.name: 0.76, CLIENT_STEPS.name: 420.0},
                {"hfsl.rounds": "10"},
            ),
            Trial(
                "a-short",
                0,
                {
                    START.name: 0.7,
                    END.name: 0.71,
                    CLIENT_IMAGES.name: 33_600.0,
                    EDGE_CLIENT_BYTES.name: 2.5e5,
                },
                {"hfsl.rounds": "5"},
            ),
        ]
    )
    md = tables.study_markdown(study)
    assert md.startswith("## HFSL study\n\n")
    body = [line.split("|")[1].strip() for line in md.splitlines()[4:]]
    assert body == ["z-long", "a-short"]  # as run, not sorted
    assert md_cells(md, "z-long") == [
        "z-long",
        "10",
        "0.710 ± 0.014",
        "0.725 ± 0.007",
        "0.760 ± 0.000",
        "+0.050 ± 0.014",  # gains 0.06 and 0.04
        "420",
        "—",
        "—",
        "2",
    ]
    assert md_cells(md, "a-short")[1:10] == [
        "5",
        "0.700 ± —",
        "—",
        "0.710 ± —",
        "+0.010 ± —",
        "—",
        "33.6k",
        "250.00 kB",
        "1",
    ]
    assert "_not run: no finished `hfsl-study` pipeline run._" in tables.study_markdown(None)
    assert "| not run |" in tables.study_markdown({})


def test_study_csv_in_run_order(tmp_path: Path) -> None:
    study = aggregate(
        [
            Trial("b", 0, {START.name: 0.70, END.name: 0.75, CLIENT_STEPS.name: 210.0}, {"hfsl.rounds": "5"}),
            Trial("b", 1, {START.name: 0.74, END.name: 0.77, CLIENT_STEPS.name: 210.0}, {"hfsl.rounds": "5"}),
            Trial("a", 0, {END.name: 0.8}),
        ]
    )
    with tables.study_csv(study, tmp_path / "study.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [(r["row"], r["rounds"], r["replicates"]) for r in lines] == [("b", "5", "2"), ("a", "", "1")]
    assert float(lines[0]["gain"]) == pytest.approx(0.04)
    assert float(lines[0]["gain_std"]) == pytest.approx(math.sqrt(2e-4), rel=1e-5)  # 6 significant digits
    assert float(lines[0]["client_steps_per_round"]) == 210.0 and lines[1]["gain"] == ""
    with tables.study_csv(None, tmp_path / "none.csv").open() as f:
        assert list(csv.reader(f)) == [next(csv.reader((tmp_path / "study.csv").open()))]


def test_header_wall_time() -> None:
    from datetime import datetime, timezone

    sources = [
        tables.PipelineSource("table3", "abc", status="FINISHED", trials=3, wall_s=1290.0),
        tables.PipelineSource("hfsl-study"),
    ]
    md = tables.header_markdown(datetime.now(timezone.utc), "exp", sources)
    assert md_cells(md, "Pipeline")[-1] == "Wall time"
    assert md_cells(md, "table3")[-1] == "21 min 30 s"
    assert md_cells(md, "hfsl-study")[1] == "not run" and len(md_cells(md, "hfsl-study")) == 12


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
            Trial(
                ECOGEN,
                k,
                {END.name: 0.9 + k / 100, EDGE_CLIENT_BYTES.name: 10.0},
                {},
                {1: 0.5, 2: 0.9 + k / 100},
            )
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


def test_json_has_start_gain_and_client_compute(tmp_path: Path) -> None:
    study = aggregate(
        [
            Trial(
                "r",
                0,
                {START.name: 0.70, END.name: 0.75, CLIENT_STEPS.name: 210.0, CLIENT_IMAGES.name: 16_800.0},
            ),
            Trial(
                "r",
                1,
                {START.name: 0.74, END.name: 0.77, CLIENT_STEPS.name: 210.0, CLIENT_IMAGES.name: 16_800.0},
            ),
        ]
    )
    data = json.loads(tables.report_json({"hfsl-study": study}, [], tmp_path / "r.json").read_text())
    row = data["hfsl-study"]["r"]
    assert row["gain"] == {"mean": pytest.approx(0.04), "std": pytest.approx(math.sqrt(2e-4))}
    assert row["accuracy_start"]["mean"] == pytest.approx(0.72)
    assert row["client_steps_per_round"] == {"mean": 210.0, "std": 0.0}
    assert row["client_images_per_round"]["mean"] == 16_800.0
    assert tables.stage_json({START.name: 0.69, END.name: 0.71, "other": 1.0}) == {
        "accuracy_start": 0.69,
        "accuracy": 0.71,
        "gain": pytest.approx(0.02),
    }
