"""Quiet, offline defaults for the libraries EcoGen drives; called once by each entry point.

``setdefault`` only: anything the user exported wins.  Must run before prefect is imported,
because Prefect reads its settings at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # else a failed telemetry call on every start
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # else a telemetry host lookup per client start
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # progress bars of parallel edges clutter logs
    "CODECARBON_LOG_LEVEL": "error",
    "DVC_NO_ANALYTICS": "1",
    "TQDM_DISABLE": "1",
    "HF_HUB_OFFLINE": "1",  # peft pulls in transformers; nothing may reach a hub
    # MKL's AVX-512 code path made torch's CPU sqrt (MKL vector math) give two results for the same
    # input in different processes, once the calling thread had set its torch thread count (as every
    # edge and cluster thread does): in up to 1 process in 4, depending on how it was launched, the
    # same run logged other losses. MKL's AVX2 path agreed in every process tried (34), for ~3 % of a
    # CPU training step. MKL reads this at its first call: set before any tensor op, it holds.
    "MKL_CBWR": "AVX2",
    # A tracking server that stops answering: MLflow retries 7 times with backoff 2 (about 4
    # minutes) before the stage fails.  4 retries with backoff 1 ride out a ~15 s blip and end a
    # run whose server is gone in seconds, so it can be resumed (`ecogen run P --resume`).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def quiet_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


_SHARE: ContextVar[int | None] = ContextVar("ecogen_cores", default=None)


def cores() -> int:
    """The cores the calling work may use: its share inside :func:`share_cores`, else the torch
    threads of the calling thread (torch's default: the machine's physical cores, or what the user
    set through ``OMP_NUM_THREADS`` / ``torch.set_num_threads``)."""
    if (share := _SHARE.get()) is not None:
        return share
    import torch

    return torch.get_num_threads()


def use_cores(n: int) -> None:
    """Give the calling thread ``n`` torch intra-op threads.  Every worker thread calls it first.

    torch keeps its thread count per thread, but a thread's first parallel op copies a
    process-wide value that ``torch.set_num_threads`` in *any* thread writes; trials side by side
    each write it as their shares begin and end, so a fresh thread left to that copy gets whatever
    was written last.  ``get_num_threads`` makes the thread take its copy now, so the setting
    after it is the one that stays.
    """
    import torch

    torch.get_num_threads()
    torch.set_num_threads(n)


@contextmanager
def share_cores(parallel_tasks: int) -> Iterator[int]:
    """While inside, each of ``parallel_tasks`` threads has its share of :func:`cores` (a share
    inside a share divides it further); yields the share.  The calling thread takes the share at
    once and gets its count back on exit; the threads that do the work call :func:`use_cores` with
    the share (threads started in a copy of this context find it in :func:`cores`).

    Edges (and trials side by side) train in parallel threads of one process; with torch's
    default (all cores per op) they oversubscribe a small machine several times over.
    """
    import torch

    share = max(1, cores() // max(1, parallel_tasks))
    before = torch.get_num_threads()
    token = _SHARE.set(share)
    use_cores(share)
    try:
        yield share
    finally:
        _SHARE.reset(token)
        torch.set_num_threads(before)
