"""``python -m benchmarks.edge_cache --load``: the edge service under a steady request rate.

Starts ``ecogen serve`` (uvicorn, 127.0.0.1, a free port) in the project, waits for ``/health``,
then sends ``rate × seconds`` requests, open loop: request j leaves at ``j / rate`` seconds whatever
the earlier ones do, so a slow server shows as queueing latency, not as a lower rate.  The images
follow the same Zipf trace as the replay.  Counts errors (non-200 answers, timeouts, refused
connections), wall-clock latency from the client, and the service's own modelled ``latency_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.agents import free_port, healthy, start_process, stop_process
from benchmarks.edge_cache import _chain, _say, requests_of
from ecogen.serving.trace import zipf_trace


def serve_command(args: argparse.Namespace, port: int) -> list[str]:
    cmd = [sys.executable, "-m", "ecogen.cli", "serve", "--port", str(port), "--capacity", str(args.capacity)]
    cmd += ["--fresh"] if args.fresh else ([args.pipeline] if args.pipeline else [])
    cmd += ["--domain", args.domain] if args.domain else []
    return cmd + (["--near", str(args.near)] if args.near is not None else [])


async def _one(client: httpx.AsyncClient, at: float, image: list, out: list[dict[str, Any]]) -> None:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))
    sent = time.perf_counter()
    try:
        r = await client.post("/predict", json={"image": image}, timeout=30)
        ok = r.status_code == 200
        body = r.json() if ok else {"error": f"{r.status_code}: {r.text[:200]}"}
    except httpx.HTTPError as err:
        ok, body = False, {"error": f"{type(err).__name__}: {err}"}
    out.append({"ok": ok, "wall_ms": 1e3 * (time.perf_counter() - sent), "sent": sent, **body})


async def drive(url: str, images: list[list], rate: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, limits=limits, trust_env=False) as client:
        t0 = time.perf_counter() + 0.5
        await asyncio.gather(*(_one(client, t0 + j / rate, image, out) for j, image in enumerate(images)))
    return out


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    _, cat = _chain(args)  # the catalogue the served model answers for (its model is the server's)
    n = int(args.rate * args.seconds)
    trace = zipf_trace(n, args.catalogue, len(cat.images), args.s, args.seed)
    images = [image.tolist() for image in requests_of(trace, cat, args.jitter, args.seed)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="edge-serve-")) / "serve.log"
    with log.open("w") as f:
        proc = start_process(serve_command(args, port), args.project.resolve(), _env(), f)
    try:
        deadline = time.monotonic() + 120
        while not healthy(f"{url}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ecogen serve did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        _say(f"serving on {url}; {n} requests at {args.rate}/s")
        t0 = time.perf_counter()
        replies = asyncio.run(drive(url, images, args.rate))
        elapsed = time.perf_counter() - t0
        stats = httpx.get(f"{url}/stats", trust_env=False).json()
    finally:
        stop_process(proc)
    return load_summary(replies, elapsed, stats)


def load_summary(replies: list[dict[str, Any]], elapsed: float, stats: dict[str, Any]) -> dict[str, Any]:
    ok = [r for r in replies if r["ok"]]
    wall = np.array([r["wall_ms"] for r in ok]) if ok else np.array([np.nan])
    modelled = np.array([r["latency_ms"] for r in ok]) if ok else np.array([np.nan])
    sent = sorted(r["sent"] for r in replies)
    return {
        "requests": len(replies),
        "errors": len(replies) - len(ok),
        "first_errors": [r["error"] for r in replies if not r["ok"]][:5],
        "seconds": elapsed,
        "offered_rate": (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 else 0.0,
        "wall_p50_ms": float(np.percentile(wall, 50)),
        "wall_p95_ms": float(np.percentile(wall, 95)),
        "wall_max_ms": float(wall.max()),
        "modelled_p50_ms": float(np.percentile(modelled, 50)),
        "modelled_p95_ms": float(np.percentile(modelled, 95)),
        "server_stats": stats,
    }


def _env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    return env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
