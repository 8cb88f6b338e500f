"""Replicates of one experiment row → mean ± sample standard deviation (ddof = 1).

A :class:`Trial` is one (row, replicate) run of an experiment's trailing stage, already read from
wherever it was recorded; :func:`aggregate` groups trials by row into :class:`RowSummary` records
that the tables, targets and figures read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Scalar metrics of the hfsl stage (one value per trial).
START = "mean_accuracy_start"
FIRST = "mean_accuracy_first"  # after round 1
END = "mean_accuracy"  # after the last round
EDGE_CLIENT_BYTES = "mean_edge_client_bytes_per_round"
D2D_BYTES = "mean_d2d_bytes_per_round"
CLOUD_EDGE_BYTES = "mean_cloud_edge_bytes_per_round"
FEDAVG_FULL_BYTES = "mean_fedavg_full_bytes_per_round"  # what FedAvg on the full model would send
VS_FEDAVG_FULL = "mean_edge_client_bytes_vs_fedavg_full"
TUNABLE_BYTES = "mean_tunable_bytes"
FULL_MODEL_BYTES = "mean_full_model_bytes"
ENERGY_KWH = "energy_kwh"
EMISSIONS = "emissions_kg_co2eq"
DURATION_S = "duration_s"

# Rows of the baselines experiment (pipelines.yaml), in the order the report lists them.
ECOGEN = "ecogen"
LABELS_ONLY = "ecogen-labels-only"
CENTRALIZED = "centralized"  # the oracle: all client data in one place
FEDAVG_FULL = "fedavg-full"
BASELINE_ROWS = (ECOGEN, LABELS_ONLY, CENTRALIZED, "local", FEDAVG_FULL, "fedavg-peft", "splitfed")

DASH = "—"  # a number that was not measured


@dataclass(frozen=True)
class Trial:
    """One (row, replicate): scalar metrics, flattened params and accuracy per round."""

    row: str
    replicate: int
    metrics: Mapping[str, float]
    params: Mapping[str, str] = field(default_factory=dict)
    accuracy: Mapping[int, float] = field(default_factory=dict)  # round → accuracy; 0 = before training


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of ``n`` replicates (std is 0.0 when n = 1)."""

    mean: float
    std: float
    n: int

    def format(self, spec: str = ".3f") -> str:
        """``"0.955 ± 0.004"``; with one replicate the spread is unknown: ``"0.955 ± —"``."""
        spread = format(self.std, spec) if self.n > 1 else "—"
        return f"{format(self.mean, spec)} ± {spread}"


def format_bytes(value: float | None) -> str:
    """Decimal units, as link capacities are quoted: ``6.87 MB``."""
    if value is None or not math.isfinite(value):
        return DASH
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def summarize(values: Sequence[float]) -> Stat | None:
    """Mean ± sample std of the finite values; ``None`` when there are none."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return None
    arr = np.asarray(finite, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return Stat(mean=float(arr.mean()), std=std, n=int(arr.size))


@dataclass(frozen=True)
class RowSummary:
    """One experiment row over its replicates."""

    row: str
    replicates: int
    metrics: dict[str, Stat]
    curve: dict[int, Stat]  # round → accuracy over the replicates that reached it
    params: dict[str, str]  # params every replicate shares

    def stat(self, key: str) -> Stat | None:
        return self.metrics.get(key)

    def mean(self, key: str) -> float | None:
        stat = self.metrics.get(key)
        return None if stat is None else stat.mean

    @property
    def clusters(self) -> int | None:
        """Clusters per edge: the ``hfsl.clusters`` param, else a row named ``c<k>``."""
        if (value := self.params.get("hfsl.clusters")) is not None:
            try:
                return int(value)
            except ValueError:
                pass
        match = re.fullmatch(r"c(\d+)", self.row)
        return int(match.group(1)) if match else None


def aggregate(trials: Iterable[Trial]) -> dict[str, RowSummary]:
    """Group trials by row (in order of first appearance) and summarize every metric."""
    groups: dict[str, list[Trial]] = {}
    for trial in trials:
        groups.setdefault(trial.row, []).append(trial)
    return {row: _summarize_row(row, group) for row, group in groups.items()}


def _summarize_row(row: str, trials: list[Trial]) -> RowSummary:
    keys = sorted({k for t in trials for k in t.metrics})
    metrics = {k: s for k in keys if (s := summarize([t.metrics[k] for t in trials if k in t.metrics]))}
    rounds = sorted({r for t in trials for r in t.accuracy})
    curve = {r: s for r in rounds if (s := summarize([t.accuracy[r] for t in trials if r in t.accuracy]))}
    first, *rest = trials
    shared = {k: v for k, v in first.params.items() if all(t.params.get(k) == v for t in rest)}
    return RowSummary(
        row=row, replicates=len({t.replicate for t in trials}), metrics=metrics, curve=curve, params=shared
    )


def ordered(rows: Mapping[str, RowSummary], order: Sequence[str]) -> list[str]:
    """``order`` first (also names not present), then any other rows in their own order."""
    return [*order, *(r for r in rows if r not in order)]


def by_clusters(rows: Mapping[str, RowSummary]) -> list[tuple[int, RowSummary]]:
    """``(clusters, row)`` for the rows that know their cluster count, fewest clusters first."""
    known = [(c, s) for s in rows.values() if (c := s.clusters) is not None]
    return sorted(known, key=lambda cs: cs[0])
