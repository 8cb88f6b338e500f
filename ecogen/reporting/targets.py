"""The claims the experiments must support, checked on aggregated rows: PASS, MISS or not run.

Each check compares row means (replicate spread enters only the Table 3 monotonicity rule) and
says what it measured, so the report reads "measured vs required" without recomputing anything.
A check whose rows are missing is "not run", never a failure of the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

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
    by_clusters,
)

Status = Literal["PASS", "MISS", "not run"]
Rows = Mapping[str, RowSummary]

ORACLE_RATIO = 0.95  # EcoGen end ≥ 95 % of the centralized oracle's end
BYTES_SHARE = 0.05  # EcoGen edge↔client bytes/round ≤ 5 % of FedAvg on the full model
SEMI_SUPERVISED_GAIN = 0.02  # unlabelled data must add ≥ 2 accuracy points
EPS = 1e-9  # accuracies are counts over a test set: 0.95 − 0.93 meets a 0.02 bar despite rounding


@dataclass(frozen=True)
class TargetCheck:
    key: str  # stable name in report.json
    claim: str
    measured: str
    required: str
    status: Status
    value: float | None = None  # the number compared with ``threshold``
    threshold: float | None = None


def _status(ok: bool) -> Status:
    return "PASS" if ok else "MISS"


def _not_run(key: str, claim: str, required: str, missing: str) -> TargetCheck:
    return TargetCheck(key, claim, f"not run ({missing})", required, "not run")


def _end(rows: Rows | None, row: str) -> float | None:
    return None if rows is None or row not in rows else rows[row].mean(END)


def ecogen_vs_oracle(baselines: Rows | None, ratio: float = ORACLE_RATIO) -> TargetCheck:
    key, claim, required = "ecogen_vs_oracle", "EcoGen end accuracy vs centralized oracle", f"≥ {ratio:.2f}"
    ecogen, oracle = _end(baselines, ECOGEN), _end(baselines, CENTRALIZED)
    if ecogen is None or oracle is None or oracle <= 0:
        return _not_run(key, claim, required, "needs baselines rows ecogen and centralized")
    value = ecogen / oracle
    measured = f"{ecogen:.3f} / {oracle:.3f} = {value:.3f}"
    return TargetCheck(key, claim, measured, required, _status(value >= ratio - EPS), value, ratio)


def end_above_first(table3: Rows | None) -> TargetCheck:
    key, claim, required = "end_above_first", "Table 3: end > first in every row", "end − first > 0"
    pairs = [
        (s.row, end - first)
        for s in (table3 or {}).values()
        if (end := s.mean(END)) is not None and (first := s.mean(FIRST)) is not None
    ]
    if not pairs:
        return _not_run(key, claim, required, "no table3 rows")
    row, gain = min(pairs, key=lambda p: p[1])
    measured = f"smallest end − first = {gain:+.3f} ({row}; {len(pairs)} rows)"
    return TargetCheck(key, claim, measured, required, _status(gain > 0), gain, 0.0)


def end_non_decreasing(table3: Rows | None) -> TargetCheck:
    """For consecutive cluster counts a < b: ``end[b] ≥ end[a] − max(std[a], std[b])``.

    ``value`` is the smallest slack ``end[b] − end[a] + max(std[a], std[b])`` (PASS when ≥ 0).
    """
    key, claim = "end_non_decreasing", "Table 3: end accuracy non-decreasing in clusters (within one std)"
    required = "end[c+1] ≥ end[c] − max(std[c], std[c+1])"
    ends = [(c, st) for c, s in by_clusters(table3 or {}) if (st := s.stat(END)) is not None]
    if len(ends) < 2:
        return _not_run(key, claim, required, "needs ≥ 2 table3 rows")
    steps = []  # (slack, clusters a, clusters b, end[b] − end[a], tolerance)
    for (ca, a), (cb, b) in zip(ends, ends[1:], strict=False):
        tolerance = max(a.std, b.std)
        steps.append((b.mean - a.mean + tolerance, ca, cb, b.mean - a.mean, tolerance))
    slack, ca, cb, step, tolerance = min(steps)
    measured = f"worst step {ca}→{cb} clusters: {step:+.3f} (tolerance {tolerance:.3f})"
    return TargetCheck(key, claim, measured, required, _status(slack >= -EPS), slack, 0.0)


def communication(baselines: Rows | None, share: float = BYTES_SHARE) -> TargetCheck:
    """EcoGen's edge↔client bytes/round ≤ ``share`` × FedAvg-full's, and its end accuracy ≥ FedAvg-full's.

    The reference is the fedavg-full row's measured bytes/round, else the full-model FedAvg cost
    EcoGen's own run computed (``mean_fedavg_full_bytes_per_round``).
    """
    key, claim = "communication", "EcoGen bytes/round vs FedAvg-full, at no loss of accuracy"
    required = f"bytes ≤ {share:.0%} of FedAvg-full and end ≥ FedAvg-full end"
    rows = baselines or {}
    ecogen = rows.get(ECOGEN)
    full = rows.get(FEDAVG_FULL)
    ours = None if ecogen is None else ecogen.mean(EDGE_CLIENT_BYTES)
    reference = full.mean(EDGE_CLIENT_BYTES) if full is not None else None
    if reference is None and ecogen is not None:
        reference = ecogen.mean(FEDAVG_FULL_BYTES)
    if ours is None or not reference:
        return _not_run(key, claim, required, "needs the ecogen row's bytes and a FedAvg-full reference")
    ratio = ours / reference
    parts = [f"bytes {ratio:.2%} of FedAvg-full"]
    end_ours, end_full = _end(rows, ECOGEN), _end(rows, FEDAVG_FULL)
    if end_ours is None or end_full is None:
        parts.append("fedavg-full accuracy not run")
        status: Status = "MISS" if ratio > share + EPS else "not run"  # too many bytes fails either way
        return TargetCheck(key, claim, "; ".join(parts), required, status, ratio, share)
    parts.append(f"end {end_ours:.3f} vs {end_full:.3f}")
    ok = ratio <= share + EPS and end_ours >= end_full - EPS
    return TargetCheck(key, claim, "; ".join(parts), required, _status(ok), ratio, share)


def semi_supervised_gain(baselines: Rows | None, gain: float = SEMI_SUPERVISED_GAIN) -> TargetCheck:
    key, claim = "semi_supervised_gain", "Unlabelled data helps: ecogen − ecogen-labels-only end"
    required = f"≥ {gain:+.3f}"
    ours, labels_only = _end(baselines, ECOGEN), _end(baselines, LABELS_ONLY)
    if ours is None or labels_only is None:
        return _not_run(key, claim, required, "needs baselines rows ecogen and ecogen-labels-only")
    value = ours - labels_only
    measured = f"{ours:.3f} − {labels_only:.3f} = {value:+.3f}"
    return TargetCheck(key, claim, measured, required, _status(value >= gain - EPS), value, gain)


def check_targets(table3: Rows | None, baselines: Rows | None) -> list[TargetCheck]:
    """Every target, in the order the report lists them."""
    return [
        ecogen_vs_oracle(baselines),
        end_above_first(table3),
        end_non_decreasing(table3),
        communication(baselines),
        semi_supervised_gain(baselines),
    ]
