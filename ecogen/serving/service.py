"""The edge's inference endpoint: an image in, its class out, from the cache or the split chain.

``POST /predict`` takes JSON ``{"image": [[[0..255, ...], ...], ...]}``: one uint8 image as a
nested (C, H, W) list, the shape the served model takes.  Anything else — another shape, floats,
values outside 0..255 — is answered 422 with a message that says what was wrong.  The answer::

    {"class": 3, "probabilities": [...], "cached": true, "near": false, "latency_ms": 40.3,
     "compute_ms": 0.01, "link_ms": 40.3, "bytes": 824, "energy_mj": 0.33}

``latency_ms`` is modelled link time plus measured compute (the edge's hash and features, the
devices' segments); ``energy_mj`` is modelled link energy plus each device's busy power times its
measured compute (:mod:`ecogen.serving.chain` says how).  An exact hit skips the devices: only
the client↔edge round trip and the hash.  ``GET /stats``: the cache's counters; ``GET /health``:
200 while the service is up.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from ecogen.serving.cache import EdgeCache, Prediction, content_key
from ecogen.serving.chain import PathCost, SplitChain, as_input


class ImageRequest(BaseModel):
    image: list[Any]  # (C, H, W) nested lists of integers 0..255


class BadImage(ValueError):
    """The request's image is not one the served model takes."""


def parse_image(image: list[Any], shape: tuple[int, int, int]) -> np.ndarray:
    """The request's nested list as uint8 (C, H, W); BadImage naming the first thing wrong."""
    try:
        arr = np.asarray(image)
    except ValueError as err:  # ragged lists
        raise BadImage(f"image is not a rectangular (C, H, W) array: {err}") from None
    if arr.shape != shape:
        raise BadImage(f"image has shape {list(arr.shape)}; this model takes (C, H, W) = {list(shape)}")
    if arr.dtype.kind not in "iu":
        raise BadImage(f"image pixels must be integers 0..255 (uint8), got {arr.dtype.name} values")
    if arr.min() < 0 or arr.max() > 255:
        raise BadImage(f"image pixels must lie in 0..255, got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.uint8)


class EdgeService:
    """The cache in front of the chain; ``cache`` None: every request crosses the devices."""

    def __init__(self, chain: SplitChain, cache: EdgeCache | None = None) -> None:
        if cache is not None and cache.near and chain.embedding is None:
            raise ValueError("a near-duplicate cache needs a chain built with the FM embedding")
        self.chain = chain
        self.cache = cache
        self._lock = threading.Lock()
        self.served = 0

    def predict(self, image: np.ndarray) -> dict[str, Any]:
        """One request: uint8 (C, H, W) → the answer :mod:`this module's docstring <.service>` shows."""
        t0 = time.perf_counter()
        x = as_input(torch.from_numpy(image)) if self.cache is None or self.cache.near else None
        key = content_key(image) if self.cache is not None else ""
        feature = self.chain.features(x) if x is not None and self.cache is not None else None
        cached, near = self.cache.lookup(key, feature) if self.cache is not None else (None, False)
        edge_s = time.perf_counter() - t0
        with self._lock:
            self.served += 1
        edge_j = self.chain.edge_watts * edge_s
        if cached is not None:
            cost = self.chain.edge_round_trip(4 * len(cached.probabilities))
            return _reply(cached, True, near, cost, edge_s, edge_j)
        out = self.chain.answer(x if x is not None else as_input(torch.from_numpy(image)))
        probs = out.probabilities
        prediction = Prediction(int(probs.argmax()), tuple(float(p) for p in probs))
        if self.cache is not None:
            self.cache.put(key, prediction, feature)
        cost = self.chain.edge_round_trip(4 * probs.numel())
        self.chain.add_chain_hops(cost, out.hop_bytes, 4 * probs.numel())
        compute_j = edge_j + self.chain.device_joules(out.compute_s)
        return _reply(prediction, False, False, cost, edge_s + sum(out.compute_s), compute_j)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": self.served, "cache": self.cache is not None}
        if self.cache is not None:
            s = self.cache.stats()
            out |= dict(hits=s.hits, near_hits=s.near_hits, misses=s.misses, evictions=s.evictions)
            out |= dict(size=s.size, capacity=s.capacity, hit_rate=s.hit_rate)
        return out


def _reply(
    p: Prediction, cached: bool, near: bool, cost: PathCost, compute_s: float, compute_j: float
) -> dict[str, Any]:
    return {
        "class": p.label,
        "probabilities": list(p.probabilities),
        "cached": cached,
        "near": near,
        "latency_ms": 1e3 * (cost.link_s + compute_s),
        "compute_ms": 1e3 * compute_s,
        "link_ms": 1e3 * cost.link_s,
        "bytes": cost.bytes,
        "energy_mj": 1e3 * (cost.link_j + compute_j),
    }


def make_app(service: EdgeService) -> FastAPI:
    """The HTTP face of ``service``.  Handlers are plain functions: FastAPI runs them in its
    thread pool, and the cache and the chain take their own locks."""
    app = FastAPI(title="EcoGen edge inference", description=__doc__)

    @app.post("/predict")
    def predict(request: ImageRequest) -> dict[str, Any]:
        try:
            image = parse_image(request.image, service.chain.image_shape)
        except BadImage as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
        return service.predict(image)

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        return service.stats()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
