"""benchmarks/clusters.py on a tiny model: both configurations run in processes of their own, the
drawing one trains as many clusters a round, and the JSON has its figures and ratios."""

from __future__ import annotations

from benchmarks.clusters import main


def test_clusters_benchmark_reports_both_configurations_and_their_ratios(tmp_path) -> None:
    out = tmp_path / "clusters.json"
    argv = ["--tiny", "--rounds", "2", "--repeats", "1", "--population", "12", "--per-round", "2"]
    result = main([*argv, "--per-cluster", "24", "--edge-labelled", "8", "--out", str(out)])
    a, b = result["all"], result["drawn"]
    assert (a["clusters"], b["clusters"]) == (2, 12)
    assert a["clusters_per_round"] == b["clusters_per_round"] == 2
    assert a["clusters_trained"] == b["clusters_trained"] == [2, 2]
    assert a["edge_client_bytes_per_round"] == b["edge_client_bytes_per_round"] > 0  # the same two a round
    assert a["seconds_per_round"] > 0 and b["peak_rss_mib"] >= b["rss_before_rounds_mib"] > 0
    assert set(result["ratios"]) >= {"seconds_per_round", "peak_rss_mib"} and result["target"] == 1.5
    assert out.read_text().startswith("{")
