"""Replicates of one experiment row → mean ± sample standard deviation (ddof = 1).

A :class:`Trial` is one (row, replicate) run of an experiment's trailing stage, already read from
wherever it was recorded; :func:`aggregate` groups trials by row into :class:`RowSummary` records
that the tables, targets and figures read.  A gain (end − start) is derived per trial before the
rows are summarized, so its spread is the replicates' spread, not one made up from two means.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np

from ecogen.stages.hfsl_metrics import END, GAIN, START
from ecogen.stages.metric import Metric

# Experiment pipelines (pipelines.yaml) the report tabulates row by row.
TABLE3_PIPELINE = "table3"
BASELINES_PIPELINE = "baselines"
STUDY_PIPELINE = "hfsl-study"
FAULTS_PIPELINE = "faults"
ROUNDS_PARAM = "hfsl.rounds"

# Rows of the baselines experiment (pipelines.yaml), in the order the report lists them.
ECOGEN = "ecogen"  # EcoGen as params.yaml configures it (labels only since the HFSL study)
SEMI_SUPERVISED = "ecogen-ssl"  # the same with an unlabelled loss (FixMatch) switched on
POOLED_LABELS = "pooled-labels"  # central training on exactly the federation's labels, same client compute
EDGE_ALONE = "edge-alone"  # the edge on its own labels at its participant's schedule, no clusters
CENTRALIZED = "centralized"  # the oracle: all client data in one place
FEDAVG_FULL = "fedavg-full"
BASELINE_ROWS = (
    ECOGEN,
    SEMI_SUPERVISED,
    POOLED_LABELS,
    EDGE_ALONE,
    CENTRALIZED,
    "local",
    FEDAVG_FULL,
    "fedavg-peft",
    "splitfed",
)

DASH = "—"  # a number that was not measured


@dataclass(frozen=True)
class Trial:
    """One (row, replicate): scalar metrics, flattened params and accuracy per round."""

    row: str
    replicate: int
    metrics: Mapping[str, float]
    params: Mapping[str, str] = field(default_factory=dict)
    accuracy: Mapping[int, float] = field(default_factory=dict)  # round → accuracy; 0 = before training
    draw: int = 0  # the FM it started from (pretrain.draw)


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of ``n`` replicates (std is 0.0 when n = 1)."""

    mean: float
    std: float
    n: int

    def format(self, spec: str = ".3f", signed: bool = False) -> str:
        """``"0.955 ± 0.004"``; with one replicate the spread is unknown: ``"0.955 ± —"``.

        ``signed``: a difference, ``"+0.031 ± 0.004"`` (the sign on the mean only).
        """
        spread = format(self.std, spec) if self.n > 1 else "—"
        return f"{format(self.mean, ('+' if signed else '') + spec)} ± {spread}"


def format_bytes(value: float | None) -> str:
    """Decimal units, as link capacities are quoted: ``6.87 MB``."""
    if value is None or not math.isfinite(value):
        return DASH
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_count(value: float | None) -> str:
    """Three significant digits with k / M / G: ``210``, ``16.8k``, ``1.2M`` (steps, images)."""
    if value is None or not math.isfinite(value):
        return DASH
    if abs(value) < 1000:
        return f"{value:.0f}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if abs(value) < 1000 * scale or unit == "G":
            return f"{value / scale:.3g}{unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    """Wall time as people quote it: ``45 s``, ``21 min 30 s``, ``1 h 02 min``."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# unit → format of one run's value and of a row's mean ± std (bytes and counts: in their units)
SPECS = {
    "accuracy": (".4f", ".3f"),
    "gain": ("+.4f", ".3f"),  # signed
    "ratio": (".2%", ".2%"),
    "kWh": (".3g", ".3g"),
    "kg": (".3g", ".3g"),
    "s": (".1f", ".1f"),
    "J": (".4g", ".4g"),  # modelled joules (ecogen.costs), never a measured figure
}
SCALED = {"bytes": format_bytes, "count": format_count}


def format_value(metric: Metric, value: float) -> str:
    """One run's value of ``metric``, as the ``default`` chain's table writes it."""
    if (scaled := SCALED.get(metric.unit)) is not None:
        return scaled(value)
    return format(value, SPECS[metric.unit][0])


def format_stat(metric: Metric, stat: Stat | None) -> str:
    """A row's mean ± std of ``metric`` over its replicates, as the report's tables write it."""
    if stat is None:
        return DASH
    if (scaled := SCALED.get(metric.unit)) is not None:
        return scaled(stat.mean)
    return stat.format(SPECS[metric.unit][1], signed=metric.unit == "gain")


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
    """One experiment row over its replicates (seeds × FM draws)."""

    row: str
    replicates: int  # the trials pooled: every (FM draw, replicate)
    metrics: dict[str, Stat]
    curve: dict[int, Stat]  # round → accuracy over the replicates that reached it
    params: dict[str, str]  # params every replicate shares
    draws: int = 1  # the FMs among them (pretrain.draw)

    def stat(self, metric: Metric) -> Stat | None:
        return self.metrics.get(metric.name)

    def mean(self, metric: Metric) -> float | None:
        stat = self.stat(metric)
        return None if stat is None else stat.mean

    def gain(self) -> float | None:
        """Mean END − START: over the replicates (:data:`GAIN`), else from the two means."""
        if (gain := self.mean(GAIN)) is not None:
            return gain
        end, start = self.mean(END), self.mean(START)
        return None if end is None or start is None else end - start

    @property
    def rounds(self) -> int | None:
        """HFSL rounds every replicate ran (the ``hfsl.rounds`` param), if known."""
        try:
            return int(self.params[ROUNDS_PARAM])
        except (KeyError, ValueError):
            return None

    @property
    def clusters(self) -> int | None:
        """Clusters per edge: the ``hfsl.clusters`` param, else a row named ``c<k>``."""
        if (value := self.params.get("hfsl.clusters")) is not None:
            with suppress(ValueError):
                return int(value)
        match = re.fullmatch(r"c(\d+)", self.row)
        return int(match.group(1)) if match else None


def derived(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` plus :data:`GAIN` (END − START) when the trial logged both and no gain itself."""
    out = dict(metrics)
    if GAIN.name not in out and END.name in out and START.name in out:
        out[GAIN.name] = out[END.name] - out[START.name]
    return out


def aggregate(trials: Iterable[Trial]) -> dict[str, RowSummary]:
    """Group trials by row (in order of first appearance) and summarize every metric, the
    :func:`derived` ones included."""
    groups: dict[str, list[Trial]] = {}
    for trial in trials:
        groups.setdefault(trial.row, []).append(trial)
    return {row: _summarize_row(row, group) for row, group in groups.items()}


def _summarize_row(row: str, trials: list[Trial]) -> RowSummary:
    per_trial = [derived(t.metrics) for t in trials]
    keys = sorted({k for m in per_trial for k in m})
    metrics = {k: s for k in keys if (s := summarize([m[k] for m in per_trial if k in m]))}
    rounds = sorted({r for t in trials for r in t.accuracy})
    curve = {r: s for r in rounds if (s := summarize([t.accuracy[r] for t in trials if r in t.accuracy]))}
    first, *rest = trials
    shared = {k: v for k, v in first.params.items() if all(t.params.get(k) == v for t in rest)}
    return RowSummary(
        row=row,
        replicates=len({(t.draw, t.replicate) for t in trials}),
        metrics=metrics,
        curve=curve,
        params=shared,
        draws=len({t.draw for t in trials}),
    )


def ordered(rows: Mapping[str, RowSummary], order: Sequence[str]) -> list[str]:
    """``order`` first (also names not present), then any other rows in their own order."""
    return [*order, *(r for r in rows if r not in order)]


def by_clusters(rows: Mapping[str, RowSummary]) -> list[tuple[int, RowSummary]]:
    """``(clusters, row)`` for the rows that know their cluster count, fewest clusters first."""
    known = [(c, s) for s in rows.values() if (c := s.clusters) is not None]
    return sorted(known, key=lambda cs: cs[0])
