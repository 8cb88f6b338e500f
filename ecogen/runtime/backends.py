"""No step computes while ``torch.export`` has torch's backends switched off.

``torch.export`` turns oneDNN (mkldnn) and NNPACK off *for the whole process* while it traces
(``torch.export._trace._ignore_backend_decomps``), so a convolution that another thread runs
meanwhile takes another kernel and rounds differently.  Edges fine-tuning side by side ended
with other weights (in the last bits, ~1e-9) whenever another edge logged its model meanwhile,
and the default run's HFSL accuracy moved by a few test images from run to run.

Every Lightning batch runs inside :func:`computing` (shared: batches of many threads at once) and
every export inside :func:`exporting` (alone: it waits for the batches in flight, and new batches
wait for it; an export takes about a second).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_COND = threading.Condition()
_STATE = {"computing": 0, "exporting": False, "waiting": 0}
_DEPTH = threading.local()  # this thread's open computing() blocks: nested ones never wait


@contextmanager
def computing() -> Iterator[None]:
    depth = getattr(_DEPTH, "n", 0)
    if depth == 0:
        with _COND:
            _COND.wait_for(lambda: not _STATE["exporting"] and not _STATE["waiting"])
            _STATE["computing"] += 1
    _DEPTH.n = depth + 1
    try:
        yield
    finally:
        _DEPTH.n = depth
        if depth == 0:
            with _COND:
                _STATE["computing"] -= 1
                _COND.notify_all()


@contextmanager
def exporting() -> Iterator[None]:
    if getattr(_DEPTH, "n", 0):
        raise RuntimeError("a thread cannot export while it computes a batch (it would wait for itself)")
    with _COND:
        _STATE["waiting"] += 1
        _COND.wait_for(lambda: not _STATE["exporting"] and not _STATE["computing"])
        _STATE["waiting"] -= 1
        _STATE["exporting"] = True
    try:
        yield
    finally:
        with _COND:
            _STATE["exporting"] = False
            _COND.notify_all()
