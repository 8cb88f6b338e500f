"""A metric that something besides its producer reads, declared once as a :class:`Metric`.

A stage's metrics module (``hfsl_metrics.py``) declares each one beside the code that produces it,
and lists where it shows; the report, ``dvc metrics show``, the closing summary and the MLflow runs
table iterate over those declarations instead of naming the metric again.  How a metric aggregates:
an edge stage's per-edge value becomes the stage's mean over its edges (``mean_<key>``,
:func:`ecogen.stages.result.combine`); over a pipeline's trials the report takes mean ± sample std
of the stage's value (:mod:`ecogen.reporting.summary`); the run's cost (:data:`COST`) is summed over
its stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# how the report writes a value (:func:`ecogen.reporting.summary.format_value`)
Unit = Literal["accuracy", "gain", "bytes", "count", "ratio", "kWh", "kg", "s", "J"]


def mean(values: list[float]) -> float:
    """The mean of ``values``; nan when there are none."""
    return float(sum(values) / len(values)) if values else float("nan")


def over_edges(key: str) -> str:
    """The stage's name for the mean over its edges of their metric ``key``."""
    return f"mean_{key}"


@dataclass(frozen=True)
class Metric:
    key: str  # as its producer writes it: one edge's value when ``per_edge``; report.json's name
    unit: Unit
    label: str = ""  # what it is, as the report's rows say it
    column: str = ""  # its heading in the report's tables
    per_edge: bool = True  # produced per edge, logged by the stage as the mean over them

    @property
    def name(self) -> str:
        """What the stage run logs, and what MLflow, DVC files and the report read."""
        return over_edges(self.key) if self.per_edge else self.key


# Every stage run's own cost, measured around it (ecogen.tracking.stage and .energy)
DURATION_S = Metric("duration_s", "s", "wall time", "Duration (s)", per_edge=False)
ENERGY_KWH = Metric("energy_kwh", "kWh", "energy (CodeCarbon)", "Energy (kWh)", per_edge=False)
EMISSIONS = Metric("emissions_kg_co2eq", "kg", "emissions (CodeCarbon)", per_edge=False)
COST = (DURATION_S, ENERGY_KWH, EMISSIONS)
