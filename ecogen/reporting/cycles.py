"""The knowledge-flow loop (pipeline ``cycles``): one :class:`Cycle` record per cycle k.

Cycle k runs finetune (the FM delivered to every edge, modules re-adapted), hfsl, then relay
(every edge's modules uploaded and relayed into the FM, data-free).  A record holds the scalar
metrics of the cycle's three stage runs and the per-edge accuracies of their edge runs, already
read from wherever they were recorded; the tables, figures and targets read only these records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecogen.stages.hfsl_metrics import EDGE_CLIENT_BYTES, END, TUNABLE_BYTES
from ecogen.stages.metric import ENERGY_KWH, Metric

CYCLES_PIPELINE = "cycles"
CYCLE_STAGES = ("finetune", "hfsl", "relay")

# relay stage: accuracies are means over every domain's test set
FM_MEAN = "fm_mean_accuracy"  # the relayed FM with its shared head
NAIVE_MEAN = "naive_mean_accuracy"  # plain parameter averaging of the edges' modules
BEST_EDGE_MEAN = "best_edge_mean_accuracy"  # the best single edge model
UPLOAD_BYTES = "upload_bytes_per_edge"
FM_BYTES = "fm_bytes"
BEST_EDGE = "best_edge"  # a param: the best edge's domain
# finetune stage: accuracies are means over the edges, each on its own domain
REDELIVERED = "mean_accuracy_redelivered"  # previous modules on the new FM (cycle ≥ 1)
DELIVERY_BYTES = "mean_cloud_edge_down_bytes"  # the FM delivered, per edge


class StageMetric:
    """A :class:`Cycle`'s number: ``metric`` of one of its stage runs (``None`` when not logged)."""

    def __init__(self, stage: str, metric: str | Metric) -> None:
        self.stage, self.metric = stage, metric if isinstance(metric, str) else metric.name

    def __get__(self, cycle: Cycle, owner: object = None) -> float | None:
        return getattr(cycle, self.stage).get(self.metric)


@dataclass(frozen=True)
class Cycle:
    """Cycle ``k``: its stage runs' metrics (empty when the stage did not finish) and edge accuracies."""

    k: int
    relay: Mapping[str, float] = field(default_factory=dict)
    finetune: Mapping[str, float] = field(default_factory=dict)
    hfsl: Mapping[str, float] = field(default_factory=dict)
    best_edge: str | None = None
    hfsl_edges: Mapping[str, float] = field(default_factory=dict)  # edge → accuracy after HFSL
    redelivered_edges: Mapping[str, float] = field(default_factory=dict)  # edge → before re-adapting

    fm = StageMetric("relay", FM_MEAN)
    naive = StageMetric("relay", NAIVE_MEAN)
    best = StageMetric("relay", BEST_EDGE_MEAN)
    redelivered = StageMetric("finetune", REDELIVERED)
    finetuned = StageMetric("finetune", END)
    after_hfsl = StageMetric("hfsl", END)
    upload_bytes = StageMetric("relay", UPLOAD_BYTES)
    prototype_bytes = StageMetric("relay", "prototype_bytes_per_edge")  # the routed relay's, per edge
    tunable_bytes = StageMetric("hfsl", TUNABLE_BYTES)
    fm_bytes = StageMetric("relay", FM_BYTES)
    delivery_bytes = StageMetric("finetune", DELIVERY_BYTES)
    edge_client_bytes = StageMetric("hfsl", EDGE_CLIENT_BYTES)
    energy_kwh = StageMetric("relay", ENERGY_KWH)

    @property
    def fm_vs_best_edge(self) -> float | None:
        return None if self.fm is None or self.best is None else self.fm - self.best

    @property
    def fm_vs_naive(self) -> float | None:
        return None if self.fm is None or self.naive is None else self.fm - self.naive

    def values(self) -> dict[str, float | None]:
        """The numbers of one table row, by the names the CSV and report.json use."""
        return {
            "fm_mean_accuracy": self.fm,
            "naive_mean_accuracy": self.naive,
            "best_edge_mean_accuracy": self.best,
            "fm_vs_best_edge": self.fm_vs_best_edge,
            "fm_vs_naive": self.fm_vs_naive,
            "redelivered_accuracy": self.redelivered,
            "finetune_accuracy": self.finetuned,
            "hfsl_accuracy": self.after_hfsl,
            "upload_bytes_per_edge": self.upload_bytes,
            "tunable_bytes": self.tunable_bytes,
            "fm_bytes": self.fm_bytes,
            "cloud_edge_down_bytes_per_edge": self.delivery_bytes,
            "edge_client_bytes_per_round": self.edge_client_bytes,
            "relay_energy_kwh": self.energy_kwh,
        }


def in_order(cycles: Iterable[Cycle] | None) -> list[Cycle]:
    """Cycles by k (``None``: the pipeline never ran → no cycles)."""
    return sorted(cycles or (), key=lambda c: c.k)
