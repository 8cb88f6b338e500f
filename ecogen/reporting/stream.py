"""The stream experiment: continuous (warm start + gate) beside retraining and the frozen first
model, increment by increment, over seeds (each seed its own data draw and FM).

One :class:`StreamPoint` per (mode, seed, increment), from the runs of the ``stream`` pipeline
(:mod:`ecogen.tracking.stream_report`).  Accuracies are the served model's on the newest
increment's test slice; "frozen" is the continuous stream's first model on the same slice.
Compute is what an edge's models trained on in the run: images through HFSL (every participant,
every round) plus the fine-tune's (epochs × labelled images), a count that does not depend on the
machine's load; the wall time of the two stages is shown beside it.  The FM is pre-trained once
per seed, for both modes.  Increment 0 is a cold start in both modes and is left out of the
compute ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev

from ecogen.reporting.tables import _table, _write_csv
from ecogen.reporting.targets import EPS, Status, TargetCheck, _status

CONTINUOUS, RETRAIN = "continuous", "retrain"
VS_RETRAIN = 0.005  # continuous ≥ retrain − 0.5 point at every increment
COMPUTE_SHARE = 0.3  # ... at ≤ 0.3× retrain's compute per increment
VS_FROZEN = 0.05  # after the shift, continuous ≥ frozen + 5 points by the last increment
FORGETTING = 0.01  # continuous loses ≤ 1 point on the first increment's slice by the end


@dataclass(frozen=True)
class StreamPoint:
    mode: str
    seed: int
    increment: int
    served_newest: float  # the model served after the run, on the newest increment's test slice
    served_first: float  # ... on the first increment's test slice (forgetting)
    frozen_newest: float | None  # the stream's first model on the newest slice
    drift_score: float | None  # mean over edges (None at increment 0)
    drift_share: float | None  # share of edges whose drift crossed the threshold
    promoted: float  # share of edges whose challenger was promoted
    compute_s: float  # finetune + hfsl wall seconds
    shift_at: int | None
    compute_images: float = math.nan  # images trained on per edge (HFSL rounds × participants + fine-tune)


def _pm(values: Sequence[float]) -> str:
    if not values:
        return "—"
    m, s = mean(values), (stdev(values) if len(values) > 1 else math.nan)
    return f"{m:.4f} ± {s:.4f}" if not math.isnan(s) else f"{m:.4f} ± —"


def _ratio(cont: Sequence[StreamPoint], retr: Sequence[StreamPoint], key: str) -> float:
    return mean(getattr(p, key) for p in cont) / mean(getattr(p, key) for p in retr)


def _at(points: Sequence[StreamPoint], mode: str, increment: int) -> list[StreamPoint]:
    return [p for p in points if p.mode == mode and p.increment == increment]


def increments(points: Sequence[StreamPoint]) -> list[int]:
    return sorted({p.increment for p in points})


def stream_markdown(points: Sequence[StreamPoint]) -> str:
    head = ["increment", "continuous", "retrain", "frozen", "drift (cont.)", "edges drifted", "promoted"]
    head += ["images trained cont./retrain", "wall time cont./retrain"]
    body = []
    for i in increments(points):
        cont, retr = _at(points, CONTINUOUS, i), _at(points, RETRAIN, i)
        frozen = [p.frozen_newest for p in cont if p.frozen_newest is not None]
        drift = [p.drift_score for p in cont if p.drift_score is not None]
        share = [p.drift_share for p in cont if p.drift_share is not None]
        ratio = f"{_ratio(cont, retr, 'compute_s'):.2f}×" if cont and retr else "—"
        images = f"{_ratio(cont, retr, 'compute_images'):.2f}×" if cont and retr else "—"
        shifted = " (shift)" if cont and cont[0].shift_at is not None and i >= cont[0].shift_at else ""
        accuracy = [_pm([p.served_newest for p in cont]), _pm([p.served_newest for p in retr]), _pm(frozen)]
        shares = [
            f"{mean(share):.2f}" if share else "—",
            f"{mean(p.promoted for p in cont):.2f}" if cont else "—",
        ]
        body.append([f"{i}{shifted}", *accuracy, _pm(drift), *shares, images, ratio])
    seeds = sorted({p.seed for p in points})
    return (
        "## Stream: continuous vs retrain vs frozen\n\n"
        "Accuracy of the served model on the newest increment's test slice, mean ± std over seeds "
        f"{seeds} (each seed its own data draw and FM). Frozen: the stream's first model. Drift: the "
        "cross-validated ROC AUC of telling the newest client images from the increment before's on the "
        "FM's features (mean over edges); edges drifted: the share over the threshold. Compute: images "
        "an edge's models trained on (HFSL: every participant, every round; plus the fine-tune's), and "
        "the wall time of the fine-tune and HFSL stages.\n\n" + _table(head, body)
    )


def stream_csv(points: Sequence[StreamPoint], path: Path) -> Path:
    head = list(StreamPoint.__dataclass_fields__)
    return _write_csv(path, head, [[getattr(p, k) for k in head] for p in points])


def stream_checks(points: Sequence[StreamPoint]) -> list[TargetCheck]:
    """The issue's four targets on the stream experiment (not run where a mode is missing)."""
    cont = [p for p in points if p.mode == CONTINUOUS]
    retr = [p for p in points if p.mode == RETRAIN]
    steps = increments(points)
    last = max(steps) if steps else 0
    shift_at = cont[0].shift_at if cont else None
    return [
        _vs_retrain(cont, retr, steps),
        _vs_frozen(cont, last, shift_at),
        _drift_at_shift(cont, shift_at),
        _forgetting(cont, last),
    ]


def _vs_retrain(cont: list[StreamPoint], retr: list[StreamPoint], steps: list[int]) -> TargetCheck:
    key, claim = "stream_vs_retrain", "Stream: continuous vs retrain at every increment (and compute)"
    required = f"≥ retrain − {VS_RETRAIN:.3f} each; compute ≤ {COMPUTE_SHARE:.1f}×"
    if not cont or not retr:
        return TargetCheck(key, claim, "not run (continuous and retrain streams)", required, "not run")
    both = [i for i in steps if _at(cont, CONTINUOUS, i) and _at(retr, RETRAIN, i)]
    gaps = [
        mean(p.served_newest for p in _at(cont, CONTINUOUS, i))
        - mean(p.served_newest for p in _at(retr, RETRAIN, i))
        for i in both
    ]
    later = [i for i in both if i > 0]
    share = (  # images trained, not wall time: that moves with the machine's load
        mean(p.compute_images for i in later for p in _at(cont, CONTINUOUS, i))
        / mean(p.compute_images for i in later for p in _at(retr, RETRAIN, i))
        if later
        else math.nan
    )
    ok = min(gaps) >= -VS_RETRAIN - EPS and share <= COMPUTE_SHARE
    upto = max(later) if later else 0
    measured = f"worst gap {min(gaps):+.4f}; images trained {share:.2f}× (increments 1…{upto})"
    return TargetCheck(key, claim, measured, required, "PASS" if ok else "MISS", min(gaps), -VS_RETRAIN)


def _vs_frozen(cont: list[StreamPoint], last: int, shift_at: int | None) -> TargetCheck:
    key, claim = (
        "stream_vs_frozen",
        "Stream: after the shift, continuous vs the frozen first model at the end",
    )
    end = _at(cont, CONTINUOUS, last)
    frozen = [p.frozen_newest for p in end if p.frozen_newest is not None]
    if not end or not frozen or shift_at is None or last < shift_at:
        return TargetCheck(
            key, claim, "not run (a shifted continuous stream)", f"≥ frozen + {VS_FROZEN:.2f}", "not run"
        )
    gain = mean(p.served_newest for p in end) - mean(frozen)
    status: Status = "PASS" if gain >= VS_FROZEN - EPS else "MISS"
    measured = f"{gain:+.4f} at increment {last}"
    return TargetCheck(key, claim, measured, f"≥ +{VS_FROZEN:.2f}", status, gain, VS_FROZEN)


def _drift_at_shift(cont: list[StreamPoint], shift_at: int | None) -> TargetCheck:
    key, claim = (
        "stream_drift",
        "Stream: drift crosses its threshold at the shifted increment, at no earlier one",
    )
    if shift_at is None or not _at(cont, CONTINUOUS, shift_at):
        required = "all edges at the shift, none before"
        return TargetCheck(key, claim, "not run (a shifted continuous stream)", required, "not run")
    before = [p.drift_share or 0.0 for p in cont if 0 < p.increment < shift_at]
    at = [p.drift_share or 0.0 for p in _at(cont, CONTINUOUS, shift_at)]
    ok = max(before, default=0.0) == 0.0 and min(at) == 1.0
    early = max(before, default=0.0)
    measured = f"edges over the threshold: {early:.2f} before, {min(at):.2f} at increment {shift_at}"
    return TargetCheck(key, claim, measured, "0 before, 1 at the shift", "PASS" if ok else "MISS")


def _forgetting(cont: list[StreamPoint], last: int) -> TargetCheck:
    key, claim = "stream_forgetting", "Stream: continuous's loss on the first increment's slice by the end"
    first, end_first = _at(cont, CONTINUOUS, 0), _at(cont, CONTINUOUS, last)
    if not first or not end_first or last == 0:
        return TargetCheck(key, claim, "not run (a continuous stream)", f"≤ {FORGETTING:.2f}", "not run")
    loss = mean(p.served_first for p in first) - mean(p.served_first for p in end_first)
    status = _status(loss <= FORGETTING + EPS)
    return TargetCheck(key, claim, f"{loss:+.4f}", f"≤ {FORGETTING:.2f}", status, loss, FORGETTING)
