"""``ecogen serve``: a finished run's edge model behind HTTP, on uvicorn.

The service is built before the server starts, so a missing run or a bad option fails at once
with one line instead of on the first request.
"""

from __future__ import annotations

from pathlib import Path

import uvicorn

from ecogen.models.vit import ViTConfig
from ecogen.serving.cache import EdgeCache
from ecogen.serving.chain import chain_from_run, fresh_chain
from ecogen.serving.service import EdgeService, make_app


def build_service(
    root: Path,
    pipeline: str | None,
    domain: str | None,
    profile: str | None,
    capacity: int,
    near: float | None,
    fresh: bool = False,
) -> EdgeService:
    """``capacity`` 0: no cache (every request crosses the devices); ``near``: the cosine above
    which a near duplicate's answer is served; ``fresh``: a freshly initialised ViT of the default
    shape (seed 0) instead of a run's model — for smoke tests, its answers mean nothing."""
    if capacity < 0:
        raise ValueError(f"--capacity must be ≥ 0 (0: no cache), got {capacity}")
    if near is not None and not capacity:
        raise ValueError("--near looks up the cache: it needs --capacity ≥ 1")
    chain = fresh_chain(ViTConfig(), seed=0) if fresh else chain_from_run(root, pipeline, domain, profile)[0]
    cache = EdgeCache(capacity, near) if capacity else None
    return EdgeService(chain, cache)


def run_server(service: EdgeService, host: str, port: int) -> None:
    uvicorn.run(make_app(service), host=host, port=port, log_level="warning")
