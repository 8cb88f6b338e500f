"""Trials side by side: order kept, at most N at once, a failure stops new ones, a stop reaches all."""

from __future__ import annotations

import contextvars
import os
import signal
import threading
import time
import weakref

import pytest
import torch

from ecogen.runtime.interrupts import Stopped, interrupt, is_stop, stop_on_sigterm
from ecogen.runtime.parallel import at_once


def test_results_in_order_with_at_most_n_running() -> None:
    lock, running, peak = threading.Lock(), [0], [0]

    def call(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05 * (3 - i % 3))  # later calls finish first
        with lock:
            running[0] -= 1
        return i * i

    assert at_once([lambda i=i: call(i) for i in range(7)], 3) == [i * i for i in range(7)]
    assert peak[0] == 3


def test_one_at_a_time_runs_in_the_callers_thread() -> None:
    me = threading.current_thread()
    assert at_once([lambda: threading.current_thread() is me] * 3, 1) == [True] * 3
    with pytest.raises(ValueError, match="at least 1"):
        at_once([lambda: 1], 0)


def test_each_call_sees_the_callers_context_and_its_share_of_the_cores() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller's")
    before = torch.get_num_threads()
    seen = at_once([lambda: (var.get(), torch.get_num_threads())] * 2, 2)
    share = max(1, before // 2)
    assert seen == [("caller's", share)] * 2
    assert torch.get_num_threads() == before


def test_a_call_keeps_its_share_when_another_writes_torchs_process_wide_count() -> None:
    # torch.set_num_threads in any thread also writes the count a fresh thread copies at its
    # first parallel op: a trial ending its share writes its own count back while others run
    before = torch.get_num_threads()
    written = threading.Event()

    def reader() -> int:
        written.wait(5)
        return torch.get_num_threads()

    def writer() -> int:
        torch.set_num_threads(8)
        written.set()
        return torch.get_num_threads()

    try:
        torch.set_num_threads(8)
        assert at_once([reader, writer], 2) == [4, 8]
    finally:
        torch.set_num_threads(before)


def test_a_failure_lets_running_calls_finish_and_starts_no_new_one() -> None:
    started, finished = [], []

    def slow() -> str:
        started.append("slow")
        time.sleep(0.3)
        finished.append("slow")
        return "slow"

    def failing() -> str:
        started.append("failing")
        time.sleep(0.05)
        raise RuntimeError("trial broke")

    def later() -> str:
        started.append("later")
        return "later"

    with pytest.raises(RuntimeError, match="trial broke"):
        at_once([slow, failing, later, later], 2)
    assert finished == ["slow"]  # its work was not cut short
    assert "later" not in started


def test_a_stop_of_the_run_stops_every_running_call() -> None:
    stopped: list[str] = []
    ready = threading.Barrier(3)

    def work(name: str) -> None:
        ready.wait()
        try:
            while True:
                time.sleep(0.01)
        except BaseException as exc:
            stopped.append(f"{name}:{type(exc).__name__}")
            raise

    def stop_the_run() -> None:
        ready.wait()
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_the_run).start()
    t0 = time.monotonic()
    with stop_on_sigterm(), pytest.raises(KeyboardInterrupt):
        at_once([lambda: work("a"), lambda: work("b")], 2)
    assert sorted(stopped) == ["a:Stopped", "b:Stopped"]
    assert time.monotonic() - t0 < 10


def test_stopped_counts_as_a_stop_and_is_raised_in_a_thread() -> None:
    assert is_stop(Stopped()) and is_stop(KeyboardInterrupt()) and not is_stop(RuntimeError())
    termination = BaseException()  # as Prefect's TerminationSignal: carries its signal
    termination.signal = signal.SIGTERM  # type: ignore[attr-defined]
    not_a_stop = RuntimeError()
    not_a_stop.signal = signal.SIGTERM  # type: ignore[attr-defined]
    assert is_stop(termination) and not is_stop(not_a_stop)
    caught: list[BaseException] = []

    def spin() -> None:
        try:
            while True:
                time.sleep(0.01)
        except BaseException as exc:
            caught.append(exc)

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    assert interrupt(t)
    t.join(5)
    assert not t.is_alive() and isinstance(caught[0], Stopped)
    assert not interrupt(t)  # ended: nothing to stop


class _Object:
    pass


def test_a_stopped_dropped_in_a_finaliser_of_a_worker_is_raised_again() -> None:
    caught: list[BaseException] = []

    def spin() -> None:
        def callback(_: object) -> None:
            raise Stopped()

        target = _Object()
        ref = weakref.ref(target, callback)
        try:
            del target  # the Stopped is dropped here by the interpreter ...
            assert ref() is None
            while True:  # ... and raised again a moment later
                time.sleep(0.01)
        except Stopped as exc:
            caught.append(exc)

    with stop_on_sigterm():
        t = threading.Thread(target=spin)
        t.start()
        t.join(5)
    assert not t.is_alive() and len(caught) == 1
