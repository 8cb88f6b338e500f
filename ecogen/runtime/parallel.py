"""Independent calls (an experiment's trials) run a few at a time, in threads of this process.

On a small machine one trial leaves cores idle between its small ops (a batch-16 step at two
torch threads is only ~1.3× faster than at one); two trials at once, one thread each, kept
both cores busy and finished two trials 1.12–1.25× sooner (docs/hfsl-study.md, "Trials side by
side").  Each call runs in a copy of the caller's context (Prefect's flow run, the progress
listeners) and torch's intra-op threads are shared out between the calls
(:func:`ecogen.runtime.environment.share_cores`).

``at_once(calls, 1)`` is a plain loop in the caller's thread.  With more:

* results come back in the order of ``calls``;
* a call that fails stops new ones from starting; those running finish (nothing they did is
  lost), then the first failure is raised;
* an interrupt of the caller (Ctrl-C, SIGTERM) raises :class:`~ecogen.runtime.interrupts.Stopped` in
  every running call's thread, they are waited for (each closes its own runs as interrupted), and the
  caller's interrupt is raised again.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from typing import TypeVar

from ecogen.runtime.environment import share_cores, use_cores
from ecogen.runtime.interrupts import forget_interrupt, interrupt

T = TypeVar("T")
UNWIND_S = 120.0  # how long an interrupted run waits for its running calls to unwind


def at_once(calls: Sequence[Callable[[], T]], parallel: int) -> list[T]:
    """Every call's result, in order, with at most ``parallel`` running at a time (see above)."""
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    if parallel == 1 or len(calls) <= 1:
        return [call() for call in calls]
    workers: dict[int, threading.Thread] = {}  # running call → its thread
    stopping = threading.Event()
    lock = threading.Lock()

    def run(i: int, call: Callable[[], T]) -> T:
        with lock:  # checked and registered at once: a stop never misses a call that starts
            if stopping.is_set():
                raise _NotStarted()
            workers[i] = threading.current_thread()
        try:
            use_cores(share)
            return call()
        except BaseException:
            stopping.set()  # before this thread takes the next call
            raise
        finally:
            with lock:  # a stop sent as the call ended must not land in the pool's own code
                workers.pop(i, None)
                forget_interrupt(threading.current_thread())

    width = min(parallel, len(calls))
    pool = ThreadPoolExecutor(width, thread_name_prefix="ecogen-trial")
    futures: list[Future[T]] = []
    with share_cores(width) as share:
        try:
            for i, call in enumerate(calls):
                futures.append(pool.submit(contextvars.copy_context().run, run, i, call))
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                stopping.set()  # the calls not started yet end at once
                wait(futures)
        except BaseException:  # the caller is interrupted: so is every running call
            with lock:
                stopping.set()
                for thread in workers.values():
                    interrupt(thread)
            with suppress(BaseException):  # waits for them to unwind; a second interrupt stops waiting
                wait(futures, timeout=UNWIND_S)
            raise
        finally:
            pool.shutdown(wait=False)
    for f in futures:
        exc = f.exception()
        if exc is not None and not isinstance(exc, _NotStarted):
            raise exc
    return [f.result() for f in futures]


class _NotStarted(Exception):
    """A call that did not start because an earlier one failed."""
