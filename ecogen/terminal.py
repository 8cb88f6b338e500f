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
    """A listener (of whole-stage steps: wrap it in :class:`ecogen.progress.Aggregate`)."""

    label: str  # the stage as the run names it, e.g. "finetune" or "hfsl[fixmatch-r0]"
    lines: int = 10
    start: float = field(default_factory=time.monotonic)

    def __call__(self, step: Step) -> None:
        every = max(1, math.ceil(step.total / self.lines))
        if step.step % every and step.step != step.total and step.step != 1:
            return
        left = (time.monotonic() - self.start) / step.step * (step.total - step.step)
        edges = f" ({step.parts} edges, mean)" if step.mean and step.parts > 1 else ""
        shown = " ".join(f"{k}={v:.4g}" for k, v in step.metrics.items())
        eta = f" · {duration(left)} left" if step.step < step.total else ""
        log.info("%s %s %d/%d%s %s%s", self.label, step.unit, step.step, step.total, edges, shown, eta)
