"""What the terminal shows while a stage trains: one progress display for the whole stage.

Not on a terminal (a CI log, a Prefect worker, a pipe), a stage prints about ``lines`` progress
lines through logging (``ecogen.runtime.progress``: evenly spaced, the last always), each with the time the
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

from ecogen.runtime.progress import Step

log = logging.getLogger("ecogen.runtime.progress")


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
    """A listener of whole-stage steps (behind :class:`ecogen.runtime.progress.Aggregate`, as ``ecogen run``
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
        if (bars := _LIVE) is not None:
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
    """The bars of the stages running now (a stage's bar goes when its last step is shown, or when
    the stage ends without it), and the log handlers pointed above them while they run."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),  # labels hold brackets: hfsl[c1-r0]
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[what]}", markup=False),
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
        self._routed: dict[int, tuple[Any, str, Any]] = {}  # handler → (object, attribute, before)

    def show(self, label: str, step: Step, what: str) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if task is None:
                self.route()  # handlers that modules loaded since the last bar have added
                task = self._tasks[label] = self.progress.add_task(label, total=step.total, what=what)
            if step.step >= step.total:
                self.progress.remove_task(self._tasks.pop(label))
            else:
                self.progress.update(task, completed=step.step, what=what)

    def drop(self, label: str) -> None:
        with self._lock:
            for name in [n for n in self._tasks if n == label or n.startswith(f"{label}[")]:
                self.progress.remove_task(self._tasks.pop(name))

    def route(self) -> None:
        """Point every log handler that writes to the terminal above the bars: Prefect's (it
        prints with a Rich console of its own: that console's file), plain stream handlers on
        stderr/stdout (ours), MLflow's (a stream that looks up sys.stderr at each write)."""
        from rich.console import Console

        terminal = {id(sys.stderr), id(sys.stdout), id(sys.__stderr__), id(sys.__stdout__)}
        loggers = [logging.getLogger()] + [
            lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
        ]
        for handler in {h for lg in loggers for h in lg.handlers}:
            if id(handler) in self._routed:
                continue
            own = getattr(handler, "console", None)
            if isinstance(own, Console) and id(own.file) in terminal:
                self._routed[id(handler)] = (own, "file", own.file)
                own.file = _Above(self.console, own.file)  # type: ignore[assignment]
            elif isinstance(handler, logging.StreamHandler) and (
                id(handler.stream) in terminal or type(handler.stream).__name__ == "MlflowLoggingStream"
            ):
                before = handler.setStream(_Above(self.console, handler.stream))
                self._routed[id(handler)] = (handler, "stream", before)

    def unroute(self) -> None:
        with self._lock:
            for target, attribute, before in self._routed.values():
                if attribute == "stream":
                    target.setStream(before)
                else:
                    setattr(target, attribute, before)
            self._routed.clear()


class _Above:
    """A handler's stream while the bars run: its whole lines are printed above the bars.  (Not a
    ``FileProxy`` itself: a Rich console given one writes to the file behind it.)"""

    def __init__(self, console: Any, stream: Any) -> None:
        from rich.file_proxy import FileProxy

        self._stream = stream
        self._lines = FileProxy(console, stream)

    def write(self, text: str) -> int:
        if getattr(self._stream, "enabled", True):  # MLflow's stream can be switched off
            self._lines.write(text)
        return len(text)

    def flush(self) -> None:
        self._lines.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_LIVE: _Bars | None = None


def drop_bars(label: str) -> None:
    """Take down the bars of a stage that ended without its last step (it failed, or was stopped)."""
    if (bars := _LIVE) is not None:
        bars.drop(label)


@contextmanager
def live_progress(console: Any = None) -> Iterator[bool]:
    """While inside, stages show as bars when the terminal is a terminal (yields whether it is).

    The log handlers that write to the terminal (ours, Prefect's, MLflow's) print above the bars
    while they run, and Python's warnings go through logging, so nothing writes through them.
    """
    global _LIVE
    from rich.console import Console

    console = console or Console(stderr=True)
    if not console.is_terminal or os.environ.get("ECOGEN_PROGRESS") == "lines" or _LIVE is not None:
        yield False
        return
    bars = _Bars(console)
    warnings_captured = logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    try:
        logging.captureWarnings(True)
        bars.route()
        bars.progress.start()
        _LIVE = bars
        yield True
    finally:
        _LIVE = None
        try:
            bars.progress.stop()
        finally:
            bars.unroute()
            logging.captureWarnings(warnings_captured)
