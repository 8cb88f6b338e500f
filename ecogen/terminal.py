"""What the terminal shows while a stage trains: one progress display for the whole stage.

Not on a terminal (a CI log, a Prefect worker, a pipe), a stage prints about ``lines`` progress
lines through logging (``ecogen.progress``: evenly spaced, the last always), each with the time the
rest of the stage will take at the pace so far; they read the same in a log and in Prefect's UI.
On a terminal, inside :func:`live_progress`, each running stage is one bar (Rich) that moves in
place, the log lines of everything else scroll above the bars, and a stage's last line is printed
when it ends.  ``ECOGEN_PROGRESS=lines`` keeps the lines on a terminal too.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

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
        edges = f" ({step.parts} edges, mean)" if step.mean and step.parts > 1 else ""
        shown = " ".join(f"{k}={v:.4g}" for k, v in step.metrics.items())
        bars = _LIVE
        if bars is not None:
            bars.show(label, step, f"{step.unit}s{edges} {shown}".strip())
            if step.step < step.total:
                return
        every = max(1, math.ceil(step.total / self.lines))
        if step.step % every and step.step != step.total and step.step != 1:
            return
        left = (now - start) / step.step * (step.total - step.step)
        eta = f" · {duration(left)} left" if step.step < step.total else ""
        log.info("%s %s %d/%d%s %s%s", label, step.unit, step.step, step.total, edges, shown, eta)


class _Bars:
    """The bars of the stages running now (a stage's bar goes when its last step is shown)."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[what]}"),
            TextColumn("·"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            refresh_per_second=4,
            # not sys.stdout/stderr: what captures them while the bars run (DVC's log handlers,
            # colorama's reset at exit) would keep writing through the display after it ends
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def show(self, label: str, step: Step, what: str) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if task is None:
                task = self._tasks[label] = self.progress.add_task(label, total=step.total, what=what)
            if step.step >= step.total:
                self.progress.remove_task(self._tasks.pop(label))
            else:
                self.progress.update(task, completed=step.step, what=what)


_LIVE: _Bars | None = None


@contextmanager
def live_progress(console: Any = None) -> Iterator[bool]:
    """While inside, stages show as bars when the terminal is a terminal (yields whether it is).

    The log handlers that write to the terminal (ours, Prefect's, MLflow's) print through the
    display's console while it runs, so their lines scroll above the bars instead of through them.
    """
    global _LIVE
    from rich.console import Console

    console = console or Console(stderr=True)
    if not console.is_terminal or os.environ.get("ECOGEN_PROGRESS") == "lines" or _LIVE is not None:
        yield False
        return
    bars = _Bars(console)
    restore = _through(console)
    bars.progress.start()
    _LIVE = bars
    try:
        yield True
    finally:
        _LIVE = None
        bars.progress.stop()
        restore()


def _through(console: Any) -> Any:
    """Point every handler that writes to the terminal at ``console``; returns the undo."""
    from rich.console import Console
    from rich.file_proxy import FileProxy

    terminal = {id(sys.stderr), id(sys.stdout), id(sys.__stderr__), id(sys.__stdout__)}
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    undo: list[tuple[Any, str, Any]] = []
    for handler in {h for lg in loggers for h in lg.handlers}:
        own = getattr(handler, "console", None)
        if isinstance(own, Console) and id(own.file) in terminal | {id(console.file)}:
            undo.append((handler, "console", own))  # Prefect's console handler prints with Rich
            handler.console = console  # type: ignore[attr-defined]
        elif isinstance(handler, logging.StreamHandler) and id(handler.stream) in terminal:
            undo.append((handler, "stream", handler.stream))
            handler.stream = FileProxy(console, handler.stream)

    def restore() -> None:
        for handler, attr, old in undo:
            setattr(handler, attr, old)

    return restore
