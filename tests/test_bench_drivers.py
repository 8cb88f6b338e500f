"""benchmarks/drivers.py on a tiny model: both drivers run, agree, and the JSON has its figures."""

from __future__ import annotations

from benchmarks.drivers import main


def test_drivers_benchmark_reports_both_drivers_and_the_bare_loop(tmp_path) -> None:
    out = tmp_path / "drivers.json"
    argv = ["--tiny", "--rounds", "2", "--repeats", "1", "--per-cluster", "40", "--edge-labelled", "8"]
    result = main([*argv, "--bare-steps", "3", "--out", str(out)])
    d = result["drivers"]
    assert d["same_bytes"] and d["max_module_difference"] <= 1e-5
    assert set(d["seconds_per_round"]) == {"serial", "batched"}
    assert d["batched_speedup"] > 0 and d["participants"] == 7
    assert d["steps_per_round"] == 7 * 15 and d["images_per_round"] > 0
    assert d["bytes_per_round"]["d2d/forward"] > 0
    assert set(result["bare"]["hfsl_vs_bare"]) == {"serial", "batched"}
    assert out.read_text().startswith("{")
