"""A stop that lands in a finaliser is delivered again, not lost; SIGTERM acts as Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import weakref

import pytest

from ecogen.runtime.interrupts import Stopped, forget_interrupt, interrupt, stop_on_sigterm


class _Stop(BaseException):
    """Stands for Prefect's TerminationSignal: a BaseException that carries its signal."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.signal = number


class _Object:
    pass


def _drop_in_finaliser(exc: BaseException) -> None:
    """Raise ``exc`` inside a weakref callback: the interpreter reports it to sys.unraisablehook
    and carries on, as it does when a signal handler runs inside one."""

    def callback(_: object) -> None:
        raise exc

    target = _Object()
    ref = weakref.ref(target, callback)
    del target
    assert ref() is None


def _wait_for_interrupt(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_sigterm_raises_keyboard_interrupt_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), stop_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for_interrupt()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("dropped", [KeyboardInterrupt(), _Stop(signal.SIGTERM)])
def test_a_stop_dropped_in_a_finaliser_is_delivered_again(dropped: BaseException) -> None:
    """Even with SIGINT ignored, as Lightning leaves it once it has handled a Ctrl-C."""
    hook = sys.unraisablehook
    sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt), stop_on_sigterm():
            _drop_in_finaliser(dropped)
            _wait_for_interrupt()
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert time.monotonic() - started < 2.0
    assert sys.unraisablehook is hook


def test_other_dropped_exceptions_go_to_the_usual_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
    with stop_on_sigterm():
        _drop_in_finaliser(ValueError("not a stop"))
        time.sleep(0.2)  # nothing is delivered
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_a_withdrawn_interrupt_is_never_raised() -> None:
    go, seen = threading.Event(), []

    def body() -> None:
        try:
            go.wait(5)  # blocked in C: the interrupt waits for the next Python instruction
            seen.append("carried on")
        except Stopped:
            seen.append("stopped")

    for withdraw in (False, True):
        go.clear()
        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        time.sleep(0.05)
        assert interrupt(thread)
        if withdraw:
            forget_interrupt(thread)
        go.set()
        thread.join(5)
    assert seen == ["stopped", "carried on"]
