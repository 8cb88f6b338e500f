"""The stream experiment's table and targets, on made-up points."""

from __future__ import annotations

from ecogen.reporting.stream import StreamPoint, stream_checks, stream_markdown


def _point(mode: str, seed: int, k: int, acc: float, **kw: float | None) -> StreamPoint:
    base = dict(
        served_first=0.80, frozen_newest=0.80 if k < 3 else 0.60, drift_score=None if k == 0 else 0.5,
        drift_share=None if k == 0 else 0.0, promoted=1.0, compute_s=2.0, shift_at=3, compute_images=2.0,
    )  # fmt: skip
    return StreamPoint(mode=mode, seed=seed, increment=k, served_newest=acc, **{**base, **kw})  # type: ignore[arg-type]


def _stream(cont_end: float = 0.75, drift_before: float = 0.0, first_end: float = 0.80) -> list[StreamPoint]:
    points = []
    for seed in (0, 1):
        for k in range(5):
            shifted = k >= 3
            drift = {"drift_score": 0.9, "drift_share": 1.0} if shifted else {}
            if 0 < k < 3:
                drift = {"drift_share": drift_before}
            end = {"served_first": first_end} if k == 4 else {}
            points.append(_point("continuous", seed, k, cont_end if k == 4 else 0.8, **drift, **end))
            points.append(
                # wall time moves with the machine's load; the compute target reads images trained
                _point("retrain", seed, k, 0.75 if k == 4 else 0.8, compute_s=1.0, compute_images=10.0)
            )
    return points


def test_all_targets_pass_on_a_good_stream():
    checks = {c.key: c for c in stream_checks(_stream())}
    assert [c.status for c in checks.values()] == ["PASS"] * 4
    assert "images trained 0.20×" in checks["stream_vs_retrain"].measured
    table = stream_markdown(_stream())
    assert "| 3 (shift) | 0.8000 ± 0.0000 | 0.8000 ± 0.0000 | 0.6000 ± 0.0000 |" in table


def test_each_target_misses_on_its_own():
    checks = {c.key: c.status for c in stream_checks(_stream(cont_end=0.70))}
    assert checks["stream_vs_retrain"] == "MISS" and checks["stream_vs_frozen"] == "PASS"
    assert {c.key: c.status for c in stream_checks(_stream(cont_end=0.62))}["stream_vs_frozen"] == "MISS"
    assert {c.key: c.status for c in stream_checks(_stream(drift_before=0.5))}["stream_drift"] == "MISS"
    assert {c.key: c.status for c in stream_checks(_stream(first_end=0.78))}["stream_forgetting"] == "MISS"


def test_missing_modes_are_not_run():
    only = [p for p in _stream() if p.mode == "continuous"]
    assert {c.key: c.status for c in stream_checks(only)}["stream_vs_retrain"] == "not run"
    assert [c.status for c in stream_checks([])] == ["not run"] * 4
