"""benchmarks/allocation.py: every rule on every order of a phone, a board and a weak device."""

from __future__ import annotations

from benchmarks.allocation import RULES, clusters, main, markdown


def test_latency_rule_is_never_slower_and_cuts_a_fifth_where_balanced_loads_the_weak_device() -> None:
    result = main(["--markdown"])
    assert len(result["clusters"]) == len(clusters()) == 6
    for cluster in result["clusters"]:
        rows = cluster["rules"]
        assert set(rows) == set(RULES)
        assert rows["latency"]["round_s"] == min(r["round_s"] for r in rows.values())
        if cluster["cluster"][1] == "weak":  # balanced gives the first middle device 2 of 4 blocks
            assert rows["latency"]["round_vs_balanced"] <= -0.20
    assert markdown(result).count("\n") == 2 + 6 * len(RULES) - 1
