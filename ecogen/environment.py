"""Quiet, offline defaults for the libraries EcoGen drives; called once by each entry point.

``setdefault`` only: anything the user exported wins.  Must run before prefect is imported,
because Prefect reads its settings at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # else a failed telemetry call on every start
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # else a telemetry host lookup per client start
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # progress bars of parallel edges clutter logs
    "CODECARBON_LOG_LEVEL": "error",
    "DVC_NO_ANALYTICS": "1",
    "TQDM_DISABLE": "1",
    "HF_HUB_OFFLINE": "1",  # peft pulls in transformers; nothing may reach a hub
}


def quiet_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


@contextmanager
def share_cores(parallel_tasks: int) -> Iterator[None]:
    """While inside, give each of ``parallel_tasks`` threads its share of torch's intra-op threads
    (of those it has now: a share inside a share divides it further); torch's previous thread
    count is restored on exit.

    Edges (and trials side by side) train in parallel threads of one process; with torch's
    default (all cores per op) they oversubscribe a small machine several times over.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // max(1, parallel_tasks)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
