"""The edge cache benchmark's runs (tag ``ecogen.kind`` = ``edge-cache``, logged by
``python -m benchmarks.edge_cache --mlflow``) for the report: the newest replay of each cache
configuration, newest first, and the newest load test (run name ``edge-cache-load``)."""

from __future__ import annotations

from mlflow import MlflowClient

from ecogen.reporting.edge_cache import CacheRun
from ecogen.tracking.runs import KIND, search_all

EDGE_CACHE_KIND = "edge-cache"
LOAD_RUN = "edge-cache-load"


def load_edge_cache(client: MlflowClient, exp_id: str) -> tuple[list[CacheRun], CacheRun | None] | None:
    """None when the benchmark has logged nothing to this experiment (the report leaves it out)."""
    query = f"tags.`{KIND}` = '{EDGE_CACHE_KIND}' AND attributes.status = 'FINISHED'"
    runs = sorted(search_all(client, exp_id, query), key=lambda r: r.info.start_time, reverse=True)
    replays: dict[str, CacheRun] = {}
    load = None
    for run in runs:
        found = CacheRun(run.info.run_id, dict(run.data.params), dict(run.data.metrics))
        if run.info.run_name == LOAD_RUN:
            load = load or found
        else:
            replays.setdefault(found.config, found)
    return (list(replays.values()), load) if runs else None
