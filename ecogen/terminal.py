"""What the terminal shows while a stage trains: one line per step for the whole stage.

Lines go through logging (``ecogen.progress``), so they read the same on a terminal, in a CI log
and in Prefect's UI.  A stage with many steps prints about ``lines`` of them (evenly spaced, the
last always), each with the time the rest of the stage will take at the pace so far.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from ecogen.progress import Step

log = logging.getLogger("ecogen.progress")


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class ProgressLines:
    """A listener of whole-stage steps (behind :class:`ecogen.progress.Aggregate`, as ``ecogen run``
    listens to edges training in parallel) or of one part after another (``ecogen stage`` trains
    the edges in turn: a line per edge, each edge's time left from its own start)."""

    label: str  # the stage as the run names it, e.g. "finetune" or "hfsl[fixmatch-r0]"
    lines: int = 10
    start: float = field(default_factory=time.monotonic)
    _starts: dict[str, float] = field(default_factory=dict)  # a part's start: the previous one's end
    _last: float | None = None

    def __call__(self, step: Step) -> None:
        now = time.monotonic()
        start, label = self.start, self.label
        if step.part is not None:
            start = self._starts.setdefault(step.part, self._last if self._last is not None else self.start)
            label = f"{self.label}[{step.part}]"
        self._last = now
        every = max(1, math.ceil(step.total / self.lines))
        if step.step % every and step.step != step.total and step.step != 1:
            return
        left = (now - start) / step.step * (step.total - step.step)
        edges = f" ({step.parts} edges, mean)" if step.mean and step.parts > 1 else ""
        shown = " ".join(f"{k}={v:.4g}" for k, v in step.metrics.items())
        eta = f" · {duration(left)} left" if step.step < step.total else ""
        log.info("%s %s %d/%d%s %s%s", label, step.unit, step.step, step.total, edges, shown, eta)
