"""The edge cache section of the report and its targets, from benchmark runs as MLflow holds them
(flattened metric keys, the benchmark's arguments as params)."""

from __future__ import annotations

from ecogen.reporting.edge_cache import CacheRun, edge_cache_checks, edge_cache_markdown

PLAIN = {"capacity": "1000", "warmup": "0", "near": "None", "jitter": "0.0"}
REPLAY = {
    "cache/hit_rate": 0.91,
    "no_cache/p50_ms": 86.2,
    "cache/p50_ms": 40.1,
    "no_cache/p95_ms": 90.6,
    "cache/p95_ms": 86.1,
    "p95_ratio": 0.95,
    "no_cache/energy_mj_per_request": 23.06,
    "cache/energy_mj_per_request": 1.99,
    "hits/exact_hit_agreement": 1.0,
}
LOAD = {
    "requests": 3000,
    "offered_rate": 50.0,
    "seconds": 60.5,
    "errors": 0,
    "wall_p50_ms": 5.3,
    "wall_p95_ms": 12.1,
}


def _status(checks: list, key: str) -> str:
    return next(c.status for c in checks if c.key == key)


def test_targets_read_the_plain_replay_and_the_load_test() -> None:
    warm = CacheRun("b" * 32, {**PLAIN, "warmup": "10000"}, {**REPLAY, "p95_ratio": 0.46})
    jitter = CacheRun("c" * 32, {**PLAIN, "jitter": "0.3"}, {**REPLAY, "cache/hit_rate": 0.5})
    cold = CacheRun("a" * 32, PLAIN, REPLAY)
    checks = edge_cache_checks([jitter, cold, warm], CacheRun("d" * 32, {}, LOAD))
    # the newest plain replay (the jittered one is not what the targets are stated for)
    assert _status(checks, "cache_hit_rate") == "PASS" and _status(checks, "cache_p95") == "MISS"
    assert _status(checks, "cache_exact_hits") == "PASS" and _status(checks, "cache_load") == "PASS"
    checks = edge_cache_checks([warm, cold], CacheRun("d" * 32, {}, {**LOAD, "errors": 2}))
    assert _status(checks, "cache_p95") == "PASS" and _status(checks, "cache_load") == "MISS"
    assert "warmup 10000" in next(c.measured for c in checks if c.key == "cache_p95")


def test_missing_runs_are_not_run_and_the_section_says_how_to_make_them() -> None:
    checks = edge_cache_checks([], None)
    assert {c.status for c in checks} == {"not run"} and len(checks) == 4
    assert "benchmarks.edge_cache --mlflow" in edge_cache_markdown([], None)


def test_the_section_shows_each_configuration_with_and_without_the_cache() -> None:
    md = edge_cache_markdown([CacheRun("a" * 32, PLAIN, REPLAY)], CacheRun("d" * 32, {}, LOAD))
    assert "| capacity 1000, warmup 0 | 0.910 | 86.2 → 40.1 | 90.6 → 86.1 | 0.95× | 23.06 → 1.99 |" in md
    assert "3000 requests at 50.0/s for 60.5 s, 0 errors" in md
