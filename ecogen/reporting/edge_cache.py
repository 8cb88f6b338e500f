"""The edge cache benchmark in the report: the newest replay of each cache configuration and the
newest load test (``python -m benchmarks.edge_cache [--load] --mlflow``), and the issue's targets
on them.

A replay's figures are modelled latency (the cost model's links + compute measured on the host)
and energy per request, with and without the cache, over the same Zipf trace.  ``warmup`` > 0
means the cache had served another trace of that many requests first (a cache that has been up
for a while); with none, every item's first request misses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecogen.reporting.tables import _table
from ecogen.reporting.targets import TargetCheck, _status

HIT_RATE = 0.6  # ≥ 60 % hits on a Zipf(1.0) trace of 10,000 requests over 1,000 items
P95_RATIO = 0.5  # p95 latency ≤ 0.5× no cache
LOAD_RATE, LOAD_SECONDS = 50.0, 60.0  # 50 requests/s for 60 s on 127.0.0.1, no errors


@dataclass(frozen=True)
class CacheRun:
    run_id: str
    params: Mapping[str, str]  # the benchmark's arguments
    metrics: Mapping[str, float]  # flattened: cache/p95_ms, no_cache/p95_ms, hits/exact_hits, …

    def get(self, key: str) -> float | None:
        return self.metrics.get(key)

    @property
    def config(self) -> str:
        p = self.params
        parts = [f"capacity {p.get('capacity', '?')}", f"warmup {p.get('warmup', '0')}"]
        if p.get("near") not in (None, "None"):
            parts.append(f"near ≥ {p['near']}")
        if p.get("jitter") not in (None, "0", "0.0"):
            parts.append(f"jitter {p['jitter']}")
        return ", ".join(parts)

    @property
    def plain(self) -> bool:
        """Exact matches of unaltered requests: what the targets are stated for."""
        p = self.params
        return p.get("near") in (None, "None") and p.get("jitter") in (None, "0", "0.0")


def _f(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _both(run: CacheRun, key: str, spec: str) -> str:
    """Without → with the cache."""
    return f"{_f(run.get('no_cache/' + key), spec)} → {_f(run.get('cache/' + key), spec)}"


def edge_cache_markdown(replays: Sequence[CacheRun], load: CacheRun | None) -> str:
    lines = ["## Edge cache (split inference as a service)", ""]
    if not replays and load is None:
        return "\n".join([*lines, "Not run: `python -m benchmarks.edge_cache --mlflow` logs it."])
    rows = [
        [
            r.config,
            _f(r.get("cache/hit_rate"), ".3f"),
            _both(r, "p50_ms", ".1f"),
            _both(r, "p95_ms", ".1f"),
            _f(r.get("p95_ratio"), ".2f") + "×",
            _both(r, "energy_mj_per_request", ".2f"),
            _f(r.get("hits/exact_hit_agreement"), ".4f"),
            f"`{r.run_id[:8]}`",
        ]
        for r in replays
    ]
    head = [
        "cache",
        "hit rate",
        "p50 ms",
        "p95 ms",
        "p95 ratio",
        "energy mJ/request",
        "exact hits = chain",
        "run",
    ]
    lines += [_table(head, rows), ""]
    if load is not None:
        lines.append(
            f"Load test (run `{load.run_id[:8]}`): {_f(load.get('requests'), '.0f')} requests at "
            f"{_f(load.get('offered_rate'), '.1f')}/s for {_f(load.get('seconds'), '.1f')} s, "
            f"{_f(load.get('errors'), '.0f')} errors; wall p50/p95 {_f(load.get('wall_p50_ms'), '.1f')}/"
            f"{_f(load.get('wall_p95_ms'), '.1f')} ms."
        )
    return "\n".join(lines)


def edge_cache_checks(replays: Sequence[CacheRun], load: CacheRun | None) -> list[TargetCheck]:
    """Hit rate, p95 and exact-hit answers on the newest plain replay; the load test's errors."""
    plain = next((r for r in replays if r.plain), None)
    claim = "Edge cache, Zipf(1.0) trace"
    if plain is None:
        missing = "not run (python -m benchmarks.edge_cache --mlflow)"
        checks = [
            TargetCheck(k, f"{claim}: {what}", missing, req, "not run")
            for k, what, req in (
                ("cache_hit_rate", "hit rate", f"≥ {HIT_RATE:.2f}"),
                ("cache_p95", "p95 latency vs no cache", f"≤ {P95_RATIO:.1f}×"),
                ("cache_exact_hits", "exact hits answer as the chain", "= 1"),
            )
        ]
    else:
        hit, p95 = plain.get("cache/hit_rate") or 0.0, plain.get("p95_ratio") or float("inf")
        same = plain.get("hits/exact_hit_agreement") or 0.0
        at = f" ({plain.config})"
        checks = [
            TargetCheck(
                "cache_hit_rate",
                f"{claim}: hit rate",
                f"{hit:.3f}{at}",
                f"≥ {HIT_RATE:.2f}",
                _status(hit >= HIT_RATE),
                hit,
                HIT_RATE,
            ),
            TargetCheck(
                "cache_p95",
                f"{claim}: p95 latency vs no cache",
                f"{p95:.2f}×{at}",
                f"≤ {P95_RATIO:.1f}×",
                _status(p95 <= P95_RATIO),
                p95,
                P95_RATIO,
            ),
            TargetCheck(
                "cache_exact_hits",
                f"{claim}: exact hits answer as the chain",
                f"{same:.4f}",
                "= 1",
                _status(same == 1.0),
                same,
                1.0,
            ),
        ]
    return [*checks, _load_check(load)]


def _load_check(load: CacheRun | None) -> TargetCheck:
    claim = f"Edge service under load: {LOAD_RATE:.0f} requests/s for {LOAD_SECONDS:.0f} s, no errors"
    required = f"≥ {LOAD_RATE:.0f}/s × {LOAD_SECONDS:.0f} s, 0 errors"
    if load is None:
        return TargetCheck(
            "cache_load", claim, "not run (benchmarks.edge_cache --load --mlflow)", required, "not run"
        )
    rate, seconds = load.get("offered_rate") or 0.0, load.get("seconds") or 0.0
    errors = load.get("errors")
    ok = errors == 0 and rate >= LOAD_RATE * 0.98 and seconds >= LOAD_SECONDS * 0.98
    measured = f"{rate:.1f}/s for {seconds:.1f} s, {_f(errors, '.0f')} errors"
    return TargetCheck("cache_load", claim, measured, required, _status(ok), errors, 0.0)
