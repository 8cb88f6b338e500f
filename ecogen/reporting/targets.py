"""The claims the experiments must support, checked on aggregated rows: PASS, MISS or not run.

Each check compares row means (replicate spread enters only the Table 3 monotonicity rule) and
says what it measured, so the report reads "measured vs required" without recomputing anything.
A check whose rows are missing is "not run", never a failure of the report.  The knowledge-relay
targets read the per-cycle records of the ``cycles`` pipeline (:mod:`ecogen.reporting.cycles`);
the default chain's target reads its one hfsl stage run's metrics, and the runtime target the
pipeline runs' wall times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ecogen.reporting.cycles import Cycle, in_order
from ecogen.reporting.energy import ENERGY_SHARE, reach, reference_accuracy
from ecogen.reporting.summary import (
    BASELINES_PIPELINE,
    CENTRALIZED,
    ECOGEN,
    EDGE_ALONE,
    FEDAVG_FULL,
    POOLED_LABELS,
    SEMI_SUPERVISED,
    STUDY_PIPELINE,
    TABLE3_PIPELINE,
    RowSummary,
    by_clusters,
    format_bytes,
    format_duration,
)
from ecogen.stages.hfsl_metrics import EDGE_CLIENT_BYTES, END, FEDAVG_FULL_BYTES, FIRST, START

Status = Literal["PASS", "MISS", "not run"]
Rows = Mapping[str, RowSummary]

ORACLE_RATIO = 0.95  # EcoGen end ≥ 95 % of the centralized oracle's end
BYTES_SHARE = 0.05  # EcoGen edge↔client bytes/round ≤ 5 % of FedAvg on the full model
SEMI_SUPERVISED_GAIN = 0.015  # unlabelled data must add ≥ 1.5 accuracy points
HFSL_GAIN = 0.030  # HFSL must lift the baselines' EcoGen edge model by ≥ 3 points over its start ...
EDGE_START = 0.735  # ... from a start no lower than the earlier runs' (a gain from a weaker start is no gain)
LABELS_ONLY_GAP = 0.015  # pooled-labels end − ecogen end ≤ 1.5 points (same labels, same compute)
CLUSTERS_WORTH = 0.020  # ecogen end − edge-alone end ≥ 2 points: the clusters add to the edge's own training
CLUSTERS_GAIN = 0.020  # Table 3: the most clusters beat the fewest by ≥ 2 points
ORACLE_CONVERGED = 0.003  # the oracle's last round adds < 0.3 points: it is a ceiling, not a laggard
DEFAULT_HFSL_GAIN = 0.020  # the default chain's HFSL stage lifts its edge model by ≥ 2 points
RUNTIME_LIMIT_S = 45 * 60  # each experiment pipeline run within 45 minutes of wall time
RUNTIME_PIPELINES = (TABLE3_PIPELINE, BASELINES_PIPELINE, STUDY_PIPELINE)
RELAY_VS_BEST_EDGE = 0.03  # the first relay's FM beats the best single edge by ≥ 3 points
RELAY_VS_NAIVE = 0.02  # ... and naive parameter averaging by ≥ 2 points
FORGETTING = 0.005  # an edge may lose at most half a point after a redelivery
BYTES_TOLERANCE = 0.5  # byte counts are means over edges, logged as floats
DROPOUT_COST = 0.010  # faults: 30 % device dropout costs at most 1 point against the clean run
ROBUST_COST = 0.020  # faults: one poisoning cluster costs a robust rule at most 2 points ...
# ... rows of the faults pipeline those targets compare
CLEAN, DROPOUT = "clean", "dropout-30-hand-over"  # the dropout row under EcoGen's default policy
POISONED_FEDAVG, ROBUST_ROWS = "sign-flip-fedavg", ("sign-flip-median", "sign-flip-trimmed")
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


def _end_difference(
    rows: Rows | None,
    pipeline: str,
    pair: tuple[str, str],
    bound: float,
    at_most: bool,
    said: tuple[str, ...],
) -> TargetCheck:
    """END of ``pair[0]`` − END of ``pair[1]`` ≤ ``bound`` (``at_most``) or ≥ it; not run when either
    of ``pipeline``'s rows is missing.  ``said``: the check's key, claim and requirement."""
    key, claim, required = said
    ours, theirs = _end(rows, pair[0]), _end(rows, pair[1])
    if ours is None or theirs is None:
        return _not_run(key, claim, required, f"needs {pipeline} rows {pair[0]} and {pair[1]}")
    value = ours - theirs
    ok = value <= bound + EPS if at_most else value >= bound - EPS
    measured = f"{ours:.3f} − {theirs:.3f} = {value:+.3f}"
    return TargetCheck(key, claim, measured, required, _status(ok), value, bound)


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


def table3_clusters_gain(table3: Rows | None, gain: float = CLUSTERS_GAIN) -> TargetCheck:
    """END of the row with the most clusters − END of the row with the fewest ≥ ``gain``: more
    clusters (more data, more participants) must pay, not merely not hurt."""
    key, claim = "table3_clusters_gain", "Table 3: most clusters vs fewest clusters, end accuracy"
    required = f"end[most] − end[fewest] ≥ {gain:+.3f}"
    ends = [(c, end) for c, s in by_clusters(table3 or {}) if (end := s.mean(END)) is not None]
    if len(ends) < 2:
        return _not_run(key, claim, required, "needs ≥ 2 table3 rows")
    (fewest, low), (most, high) = ends[0], ends[-1]
    value = high - low
    measured = f"{most} vs {fewest} clusters: {high:.3f} − {low:.3f} = {value:+.3f}"
    return TargetCheck(key, claim, measured, required, _status(value >= gain - EPS), value, gain)


def oracle_converged(baselines: Rows | None, limit: float = ORACLE_CONVERGED) -> TargetCheck:
    """The centralized oracle's curve: last round − the round before < ``limit``.

    The oracle is the ceiling the other rows are measured against; if it was still climbing, the
    ratios to it flatter them.
    """
    key, claim = "oracle_converged", "Centralized oracle trained to convergence: last-round change"
    required = f"acc[last] − acc[last − 1] < {limit:+.3f}"
    row = (baselines or {}).get(CENTRALIZED)
    rounds = sorted(row.curve) if row is not None else []
    if row is None or len(rounds) < 2:
        return _not_run(key, claim, required, "needs the centralized row's accuracy for ≥ 2 rounds")
    (r0, prev), (r1, last) = ((r, row.curve[r].mean) for r in rounds[-2:])
    value = last - prev
    measured = f"round {r0} {prev:.3f} → round {r1} {last:.3f} ({value:+.3f})"
    return TargetCheck(key, claim, measured, required, _status(value < limit - EPS), value, limit)


def default_hfsl_gain(default: Mapping[str, float] | None, gain: float = DEFAULT_HFSL_GAIN) -> TargetCheck:
    """The ``default`` chain's hfsl stage run: ``mean_accuracy`` − ``mean_accuracy_start`` ≥ ``gain``
    (the pipeline users run first must show HFSL helping, not only the experiments)."""
    key, claim = "default_hfsl_gain", "Default pipeline: HFSL end − start"
    required = f"≥ {gain:+.3f}"
    metrics = default or {}
    end, start = metrics.get(END.name), metrics.get(START.name)
    if end is None or start is None:
        return _not_run(key, claim, required, "needs a finished default pipeline run's hfsl stage")
    value = end - start
    measured = f"{end:.3f} − {start:.3f} = {value:+.3f}"
    return TargetCheck(key, claim, measured, required, _status(value >= gain - EPS), value, gain)


def runtime(
    wall_times: Mapping[str, float | None] | None,
    limit_s: float = RUNTIME_LIMIT_S,
    pipelines: Sequence[str] = RUNTIME_PIPELINES,
) -> TargetCheck:
    """Each of ``pipelines``' runs took ≤ ``limit_s`` of wall time (``wall_times``: seconds, None
    when not run).  MISS when any present one exceeds; ``value`` is the longest."""
    key, claim = "runtime", "Experiment pipeline runs' wall time"
    required = f"each ≤ {format_duration(limit_s)}"
    times = wall_times or {}
    measured_times = {p: t for p in pipelines if (t := times.get(p)) is not None}
    if not measured_times:
        return _not_run(key, claim, required, f"no {', '.join(pipelines)} run")
    measured = "; ".join(
        f"{p} {format_duration(t)}" if (t := times.get(p)) is not None else f"{p} not run" for p in pipelines
    )
    value = max(measured_times.values())
    return TargetCheck(key, claim, measured, required, _status(value <= limit_s), value, float(limit_s))


def communication(baselines: Rows | None, share: float = BYTES_SHARE) -> TargetCheck:
    """EcoGen's edge↔client bytes/round ≤ ``share`` × FedAvg-full's, and its end accuracy ≥ FedAvg-full's.

    The reference is the fedavg-full row's measured bytes/round, else the full-model FedAvg cost
    EcoGen's own run computed (``mean_fedavg_full_bytes_per_round``).
    """
    key, claim = "communication", "EcoGen bytes/round vs FedAvg-full, at no loss of accuracy"
    required = f"bytes ≤ {share:.0%} of FedAvg-full and end ≥ FedAvg-full end"
    rows = baselines or {}
    ecogen, full = rows.get(ECOGEN), rows.get(FEDAVG_FULL)
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


def energy(baselines: Rows | None, share: float = ENERGY_SHARE) -> TargetCheck:
    """EcoGen's modelled device + link joules to reach FedAvg-full's end accuracy ≤ ``share`` ×
    FedAvg-full's (:mod:`ecogen.reporting.energy`); a miss says the ratio and whether EcoGen
    reached that accuracy at all (if not, the ratio is at EcoGen's end, all its rounds)."""
    key = "energy"
    claim = "Modelled device + link energy: EcoGen vs FedAvg-full to reach FedAvg-full's end accuracy"
    required = f"≤ {share:g} × FedAvg-full"
    rows = baselines or {}
    ecogen, full, target = rows.get(ECOGEN), rows.get(FEDAVG_FULL), reference_accuracy(rows)
    if ecogen is None or full is None or target is None:
        return _not_run(key, claim, required, "needs the ecogen and fedavg-full rows")
    ours, theirs = reach(ecogen, target), reach(full, target)
    if ours.joules is None or not theirs.joules:
        return _not_run(key, claim, required, "needs both rows' modelled_ energy (hfsl stage)")
    ratio = ours.joules / theirs.joules
    if ours.round is None:
        measured = f"EcoGen never reached {target:.3f} in {ours.rounds} rounds; at its end {ratio:.2f}×"
        return TargetCheck(
            key, claim, measured + _at_ecogens_end(ecogen, full), required, "MISS", ratio, share
        )
    measured = (
        f"{ours.joules:.4g} J (round {ours.round}) vs {theirs.joules:.4g} J (round {theirs.round})"
        f" to reach {target:.3f}: {ratio:.2f}×"
    )
    return TargetCheck(key, claim, measured, required, _status(ratio <= share + EPS), ratio, share)


def _at_ecogens_end(ecogen: RowSummary, full: RowSummary) -> str:
    """Why a miss misses: the same comparison at the accuracy EcoGen does reach (its end), so the
    report tells an accuracy shortfall from an energy one."""
    end = ecogen.mean(END)
    ours, theirs = (None, None) if end is None else (reach(ecogen, end), reach(full, end))
    if end is None or ours is None or theirs is None or not ours.joules or not theirs.joules:
        return ""
    if theirs.round is None:
        return f"; FedAvg-full never reached EcoGen's end {end:.3f} either"
    return (
        f"; to EcoGen's end {end:.3f}: {ours.joules:.4g} J (round {ours.round}) vs"
        f" {theirs.joules:.4g} J (round {theirs.round}), {ours.joules / theirs.joules:.2f}×"
    )


def hfsl_gain(baselines: Rows | None, gain: float = HFSL_GAIN, start: float = EDGE_START) -> TargetCheck:
    """Baselines' ecogen row: END − START ≥ ``gain`` and START ≥ ``start``.

    Both halves, because a larger gain from a weaker edge model is not progress.  ``value`` is the
    gain (mean over the replicates of each one's END − START).
    """
    key, claim = "hfsl_gain", "HFSL lifts the EcoGen edge model: ecogen end − start (baselines)"
    required = f"gain ≥ {gain:+.3f} and start ≥ {start:.3f}"
    row = (baselines or {}).get(ECOGEN)
    ours, before = (None, None) if row is None else (row.mean(END), row.mean(START))
    value = None if row is None else row.gain()
    if ours is None or before is None or value is None:
        return _not_run(key, claim, required, "needs the baselines ecogen row's start and end")
    measured = f"start {before:.3f}, end {ours:.3f}: gain {value:+.3f}"
    ok = value >= gain - EPS and before >= start - EPS
    return TargetCheck(key, claim, measured, required, _status(ok), value, gain)


def labels_only_vs_central(baselines: Rows | None, gap: float = LABELS_ONLY_GAP) -> TargetCheck:
    """pooled-labels END − ecogen END ≤ ``gap``: federated split training on the federation's labels
    (EcoGen's defaults train on labels only) loses little to training centrally on exactly those
    labels, at the same client compute."""
    claim = "EcoGen labels only vs central training on the same labels, same client compute"
    said = ("labels_only_vs_central", claim, f"pooled-labels − ecogen ≤ {gap:+.3f}")
    return _end_difference(baselines, "baselines", (POOLED_LABELS, ECOGEN), gap, True, said)


def clusters_worth_having(baselines: Rows | None, gain: float = CLUSTERS_WORTH) -> TargetCheck:
    """ecogen END − edge-alone END ≥ ``gain``: what the clusters add beside the edge's own training
    on its labels at the same schedule (the edge joins EcoGen's rounds)."""
    claim = "The clusters are worth having: ecogen − edge alone end"
    said = ("clusters_worth_having", claim, f"≥ {gain:+.3f}")
    return _end_difference(baselines, "baselines", (ECOGEN, EDGE_ALONE), gain, False, said)


def semi_supervised_gain(baselines: Rows | None, gain: float = SEMI_SUPERVISED_GAIN) -> TargetCheck:
    claim = "Unlabelled data helps: ecogen-ssl − ecogen (labels only) end"
    said = ("semi_supervised_gain", claim, f"≥ {gain:+.3f}")
    return _end_difference(baselines, "baselines", (SEMI_SUPERVISED, ECOGEN), gain, False, said)


def _relay_margin(
    cycles: Sequence[Cycle] | None, key: str, claim: str, other: str, margin: float
) -> TargetCheck:
    """After the first relay (cycle 0): FM mean accuracy − ``other``'s (``best`` | ``naive``) ≥ ``margin``."""
    label = "best edge" if other == "best" else other
    required = f"FM − {label} ≥ {margin:+.3f}"
    first = next((c for c in in_order(cycles) if c.k == 0), None)
    theirs = getattr(first, other) if first is not None else None
    if first is None or first.fm is None or theirs is None:
        return _not_run(key, claim, required, "needs the cycle-0 relay")
    value = first.fm - theirs
    edge = f" ({first.best_edge})" if other == "best" and first.best_edge else ""
    measured = f"{first.fm:.3f} − {theirs:.3f}{edge} = {value:+.3f}"
    return TargetCheck(key, claim, measured, required, _status(value >= margin - EPS), value, margin)


def relay_vs_best_edge(cycles: Sequence[Cycle] | None, margin: float = RELAY_VS_BEST_EDGE) -> TargetCheck:
    """After the first relay (cycle 0): FM mean cross-domain accuracy − best single edge's ≥ ``margin``."""
    claim = "First relay: FM mean accuracy vs the best single edge"
    return _relay_margin(cycles, "relay_vs_best_edge", claim, "best", margin)


def relay_vs_naive(cycles: Sequence[Cycle] | None, margin: float = RELAY_VS_NAIVE) -> TargetCheck:
    """After the first relay (cycle 0): FM mean cross-domain accuracy − naive averaging's ≥ ``margin``."""
    claim = "First relay: FM mean accuracy vs naive parameter averaging"
    return _relay_margin(cycles, "relay_vs_naive", claim, "naive", margin)


def relay_non_decreasing(cycles: Sequence[Cycle] | None) -> TargetCheck:
    """FM mean cross-domain accuracy of cycle k ≥ that of cycle k − 1 (``value``: the worst step)."""
    key, claim = "relay_non_decreasing", "Relay: FM mean accuracy does not decrease over the cycles"
    required = "FM[k] ≥ FM[k−1] every cycle"
    fms = [(c.k, fm) for c in in_order(cycles) if (fm := c.fm) is not None]
    if len(fms) < 2:
        return _not_run(key, claim, required, "needs ≥ 2 relayed cycles")
    steps = [(b - a, ka, kb) for (ka, a), (kb, b) in zip(fms, fms[1:], strict=False)]
    step, ka, kb = min(steps)
    trend = " → ".join(f"{fm:.3f}" for _, fm in fms)
    measured = f"{trend} (worst step {ka}→{kb}: {step:+.3f})"
    return TargetCheck(key, claim, measured, required, _status(step >= -EPS), step, 0.0)


def redelivery_no_forgetting(cycles: Sequence[Cycle] | None, tolerance: float = FORGETTING) -> TargetCheck:
    """Every edge's HFSL accuracy in each cycle ≥ 1 (after a redelivery) ≥ its cycle-0 HFSL accuracy
    (before the first relay) − ``tolerance``.

    ``value`` is the worst change (most negative), compared with ``−tolerance``.
    """
    key, claim = "redelivery_no_forgetting", "Redelivery: no edge loses accuracy vs before the first relay"
    required = f"every edge, every cycle ≥ 1: HFSL accuracy ≥ its cycle-0 accuracy − {tolerance:.3f}"
    ordered = in_order(cycles)
    before = next((c.hfsl_edges for c in ordered if c.k == 0), {})
    changes = [
        (acc - before[edge], c.k, edge, acc, before[edge])
        for c in ordered
        if c.k >= 1
        for edge, acc in sorted(c.hfsl_edges.items())
        if edge in before
    ]
    if not changes:
        return _not_run(key, claim, required, "needs per-edge HFSL accuracy of cycle 0 and a later cycle")
    change, k, edge, acc, ref = min(changes)
    edges = len({e for _, _, e, _, _ in changes})
    measured = f"worst: {edge} cycle {k}: {acc:.3f} vs {ref:.3f} = {change:+.3f} ({edges} edges)"
    ok = change >= -tolerance - EPS
    return TargetCheck(key, claim, measured, required, _status(ok), change, -tolerance)


def upload_is_tunable(cycles: Sequence[Cycle] | None) -> TargetCheck:
    """Relay upload per edge == the edges' tunable bytes (hfsl ``mean_tunable_bytes``) in every cycle.

    ``value`` is the largest |upload − tunable| in bytes; the FM's size is stated beside it.
    """
    key, claim = "upload_is_tunable", "Relay upload per edge = tunable modules' bytes (vs the FM size)"
    required = "upload = tunable bytes, every cycle"
    pairs = [
        (abs(up - tb), c.k, up, tb)
        for c in in_order(cycles)
        if (up := c.upload_bytes) is not None and (tb := c.tunable_bytes) is not None
    ]
    if not pairs:
        return _not_run(key, claim, required, "needs a relay and its cycle's hfsl tunable bytes")
    gap, k, up, tb = max(pairs)
    ok = gap <= BYTES_TOLERANCE
    if ok:
        measured = f"{format_bytes(up)} = {format_bytes(tb)} in {len(pairs)} cycle(s)"
    else:
        measured = f"cycle {k}: upload {format_bytes(up)} ≠ tunable {format_bytes(tb)}"
    if fm := next((f for c in in_order(cycles) if (f := c.fm_bytes)), None):
        measured += f"; FM {format_bytes(fm)} (upload {up / fm:.1%} of it)"
    if proto := next((p for c in in_order(cycles) if (p := c.prototype_bytes)), None):
        measured += f"; plus style prototypes {format_bytes(proto)} per edge and cycle"
    return TargetCheck(key, claim, measured, required, _status(ok), gap, 0.0)


def dropout_cost(faults: Rows | None, cost: float = DROPOUT_COST) -> TargetCheck:
    """clean END − the dropout row's END ≤ ``cost``: the run completes and loses little to dropout."""
    claim = "30 % device dropout per round: EcoGen end vs the clean run (faults)"
    said = ("dropout_cost", claim, f"clean − {DROPOUT} ≤ {cost:+.3f}")
    return _end_difference(faults, "faults", (CLEAN, DROPOUT), cost, True, said)


def robust_aggregation(faults: Rows | None, cost: float = ROBUST_COST) -> TargetCheck:
    """One sign-flipping cluster: every robust rule's END within ``cost`` of the clean run, and plain
    FedAvg's not (otherwise the attack shows nothing).  ``value``: the worst robust rule's cost."""
    key = "robust_aggregation"
    claim = "One poisoning cluster: robust rules stay near the clean run, FedAvg does not (faults)"
    required = f"clean − robust ≤ {cost:+.3f} for {', '.join(ROBUST_ROWS)}; clean − fedavg > {cost:+.3f}"
    clean, plain = _end(faults, CLEAN), _end(faults, POISONED_FEDAVG)
    robust = {row: _end(faults, row) for row in ROBUST_ROWS}
    if clean is None or plain is None or any(v is None for v in robust.values()):
        missing = f"needs faults rows {CLEAN}, {POISONED_FEDAVG}, {', '.join(ROBUST_ROWS)}"
        return _not_run(key, claim, required, missing)
    costs = {row: clean - v for row, v in robust.items() if v is not None}
    value = max(costs.values())
    measured = ", ".join(f"{row} {c:+.3f}" for row, c in costs.items()) + f"; fedavg {clean - plain:+.3f}"
    ok = value <= cost + EPS and clean - plain > cost
    return TargetCheck(key, claim, measured, required, _status(ok), value, cost)


def check_targets(
    table3: Rows | None,
    baselines: Rows | None,
    cycles: Sequence[Cycle] | None = None,
    default: Mapping[str, float] | None = None,
    wall_times: Mapping[str, float | None] | None = None,
    faults: Rows | None = None,
) -> list[TargetCheck]:
    """Every target, in the order the report lists them.

    ``default``: the default chain's hfsl stage metrics; ``wall_times``: seconds per pipeline run;
    ``faults``: the faults pipeline's rows.
    """
    return [
        hfsl_gain(baselines),
        labels_only_vs_central(baselines),
        clusters_worth_having(baselines),
        semi_supervised_gain(baselines),
        end_above_first(table3),
        table3_clusters_gain(table3),
        ecogen_vs_oracle(baselines),
        oracle_converged(baselines),
        default_hfsl_gain(default),
        runtime(wall_times),
        communication(baselines),
        end_non_decreasing(table3),
        dropout_cost(faults),
        robust_aggregation(faults),
        energy(baselines),
        relay_vs_best_edge(cycles),
        relay_vs_naive(cycles),
        relay_non_decreasing(cycles),
        redelivery_no_forgetting(cycles),
        upload_is_tunable(cycles),
    ]
