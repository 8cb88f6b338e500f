"""Progress as it happens: training loops report each epoch or round here, listeners hear it.

Algorithm code calls :func:`report` with a :class:`Step` and knows nothing of who listens.  The
tracking layer listens to log metrics into MLflow while a stage runs (``ecogen.tracking.live``)
and the terminal listens to print one line per step for the whole stage (``ecogen.runtime.terminal``).
Listeners are held in a context variable: a stage sets them around its body with
:func:`listening`; threads started by Prefect's task runner inherit them (it copies the context).

A stage whose edges train in parallel reports one step per edge (``part``); :class:`Aggregate`
turns those into one step for the stage once every edge has reported it, with the mean of each
metric, so that neither MLflow nor the terminal gets an interleaved line per edge.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """Epoch or round ``step`` (from 1) of ``total`` of one stage, or of one part of it."""

    stage: str  # "pretrain", "finetune", "hfsl", "relay"
    step: int
    total: int
    metrics: Mapping[str, float]
    unit: str = "epoch"  # what a step is: "epoch" or "round"
    part: str | None = None  # the edge this step is of; None: the whole stage
    parts: int = 1  # how many parts of the stage report this step (the edges training in parallel)
    mean: bool = False  # the metrics are the means over the parts (made by Aggregate)


Listener = Callable[[Step], None]

log = logging.getLogger("ecogen.runtime.progress")

_LISTENERS: ContextVar[tuple[Listener, ...]] = ContextVar("ecogen_progress_listeners", default=())


class ListenerFatal(RuntimeError):
    """Raised by a listener whose failure must end the stage: what it writes to is gone (e.g. the
    tracking server), so going on would train for nothing it could record."""


def report(step: Step) -> None:
    """Tell every listener of the current context; a listener's failure never stops training,
    unless it raises :class:`ListenerFatal`."""
    for listener in _LISTENERS.get():
        try:
            listener(step)
        except ListenerFatal:
            raise
        except Exception:  # a lost progress line or metric point is not worth a failed stage
            log.debug("progress listener failed", exc_info=True)


@contextmanager
def listening(*listeners: Listener) -> Iterator[None]:
    """Add ``listeners`` for the body (they hear what is reported in it and in threads it starts)."""
    token = _LISTENERS.set(_LISTENERS.get() + listeners)
    try:
        yield
    finally:
        _LISTENERS.reset(token)


@dataclass
class Aggregate:
    """A listener that passes whole-stage steps to ``listener``: a part's step is held until all
    ``parts`` of that step are in, then passed on once as the mean of every metric they share."""

    listener: Listener
    _held: dict[tuple[str, int], dict[str, Step]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, step: Step) -> None:
        if step.part is None:
            self.listener(step)
            return
        with self._lock:
            key = (step.stage, step.step)
            held = self._held.setdefault(key, {})
            held[step.part] = step
            if len(held) < step.parts:
                return
            del self._held[key]
        shared = set.intersection(*(set(s.metrics) for s in held.values()))
        metrics = {k: sum(s.metrics[k] for s in held.values()) / len(held) for k in sorted(shared)}
        self.listener(Step(step.stage, step.step, step.total, metrics, step.unit, None, len(held), mean=True))
