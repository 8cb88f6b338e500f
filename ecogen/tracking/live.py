"""Metrics logged while a stage runs, so that a run in progress can be watched in the MLflow UI.

:class:`LiveMetrics` listens to :mod:`ecogen.runtime.progress` and logs each step's metrics into one run
at that step, stamped with the time it happened.  The stage's history is logged again at the end
only for the series that were not logged live (see ``log_result(..., logged=...)``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Metric

from ecogen.runtime.progress import ListenerFatal, Step
from ecogen.stages.metric import over_edges
from ecogen.tracking.runs import EDGE, finish_run, start_child_run
from ecogen.tracking.uri import tracking_lost


@dataclass
class LiveMetrics:
    """Logs whole-stage steps (``part is None``, e.g. behind an ``Aggregate``) into ``run_id``;
    with ``part`` set, only that part's steps (one edge's, into the edge's run).  Metrics of an
    aggregated step are named ``mean_<metric>``, as the stage result names the edges' means."""

    run_id: str
    part: str | None = None
    logged: set[str] = field(default_factory=set)  # metric names logged so far
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, step: Step) -> None:
        if step.part != self.part:
            return
        now = int(time.time() * 1000)
        metrics = [
            Metric(over_edges(k) if step.mean else k, float(v), now, step.step)
            for k, v in step.metrics.items()
        ]
        try:
            MlflowClient().log_batch(self.run_id, metrics=metrics)
        except Exception as exc:
            if tracking_lost(exc):  # every later point would fail the same way: end the stage
                raise ListenerFatal(str(exc)) from exc
            raise
        with self._lock:
            self.logged.update(m.key for m in metrics)


@dataclass
class EdgeRuns:
    """Per-edge runs under a stage run, made when an edge reports its first step (a stage whose
    edges train inside one call, as HFSL's do), each logged into at once as :class:`LiveMetrics`
    does.  ``runs``: run name (``edge-<domain>``) → its live logger, for the stage's result to be
    logged into the same runs at the end (``log_result(..., existing=...)``)."""

    stage_run_id: str
    data_version: str | None
    runs: dict[str, LiveMetrics] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, step: Step) -> None:
        if step.part is None:
            return
        name = f"edge-{step.part}"
        with self._lock:
            if name not in self.runs:
                run_id = start_child_run(self.stage_run_id, name, "edge", self.data_version, {EDGE: name})
                self.runs[name] = LiveMetrics(run_id, part=step.part)
        self.runs[name](step)

    def existing(self) -> dict[str, tuple[str, set[str]]]:
        return {name: (live.run_id, live.logged) for name, live in self.runs.items()}

    def terminate(self, status: str) -> None:
        """After a failed stage: the edges' runs end as the stage's does."""
        for live in self.runs.values():
            finish_run(live.run_id, status)
