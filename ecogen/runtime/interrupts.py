"""Stopping a run: SIGTERM ends it as Ctrl-C does, and a stop is never lost.

Python runs a signal handler in the main thread at the next bytecode, wherever that is. When it
is inside a finaliser (a weakref callback, a ``__del__``: SQLAlchemy's are common while MLflow
works), the exception the handler raises -- ``KeyboardInterrupt``, or Prefect's
``TerminationSignal`` while a flow runs -- is "ignored" by the interpreter: printed and dropped,
and the run goes on as if nobody had asked it to stop.  ``stop_on_sigterm`` therefore also
watches the exceptions the interpreter drops, and delivers such a stop again a moment later, when
the main thread is back in ordinary code -- as SIGTERM, whatever signal it was: SIGTERM's handler
is the one this context controls (its own, or Prefect's bridge, which hands over to it), while
SIGINT's may have been changed by anyone (Lightning ignores SIGINT once it has seen one).

Work running in other threads (trials side by side, :mod:`ecogen.runtime.parallel`) is stopped by raising
:class:`Stopped` in those threads; a ``Stopped`` dropped in a finaliser is raised there again.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

REDELIVER_AFTER_S = 0.05


class Stopped(BaseException):
    """Raised in a thread doing part of a run (a trial beside others) when the run is stopped; its
    runs are marked KILLED as for Ctrl-C.  Not a KeyboardInterrupt: Lightning meets one of those
    by ignoring SIGINT, a call that only the main thread may make."""

    def __str__(self) -> str:
        return super().__str__() or "the run was stopped (Ctrl-C or SIGTERM) while this ran beside others"


def is_stop(exc: BaseException | None) -> bool:
    """Did ``exc`` end the work because the run was stopped: Ctrl-C, SIGTERM (as KeyboardInterrupt,
    or as a signal's exception such as Prefect's TerminationSignal, a BaseException that carries
    its ``signal``), or :class:`Stopped`?"""
    if isinstance(exc, (KeyboardInterrupt, Stopped)):
        return True
    carried = getattr(exc, "signal", None)
    return isinstance(exc, BaseException) and not isinstance(exc, Exception) and isinstance(carried, int)


def interrupt(thread: threading.Thread) -> bool:
    """Raise :class:`Stopped` in ``thread`` at its next Python instruction; False when it has ended."""
    if thread.ident is None or not thread.is_alive():
        return False
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Stopped))
    return bool(hit)


def forget_interrupt(thread: threading.Thread) -> None:
    """Withdraw a :func:`interrupt` sent to ``thread`` that it has not raised yet."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), None)


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (a scheduler's or `kill`'s stop) raises KeyboardInterrupt as Ctrl-C does, so the runs
    are marked KILLED, the Prefect server is stopped and `--resume` continues; a stop that lands in
    a finaliser is delivered again instead of being lost."""
    before_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    before_hook = sys.unraisablehook

    def redeliver(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Stopped):  # raised in this (worker) thread: again
            again = threading.Timer(REDELIVER_AFTER_S, interrupt, (threading.current_thread(),))
            again.daemon = True
            again.start()
            return
        if not is_stop(unraisable.exc_value):
            before_hook(unraisable)
            return
        log.debug("a stop (%r) landed in a finaliser; delivering it again", unraisable.exc_value)
        timer = threading.Timer(REDELIVER_AFTER_S, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()

    sys.unraisablehook = redeliver
    try:
        yield
    finally:
        sys.unraisablehook = before_hook
        signal.signal(signal.SIGTERM, before_term)
