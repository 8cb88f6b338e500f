"""The edge cache on a Zipf trace: hit rate, latency, energy and accuracy with and without it.

Replays a Zipf(s) trace (:mod:`ecogen.serving.trace`) of test images through the edge service
in-process (:class:`~ecogen.serving.service.EdgeService`, the object behind ``POST /predict``,
called directly so that HTTP overhead does not blur the compute it measures), once without a
cache and once with one, on the same requests in the same order::

    python -m benchmarks.edge_cache --project P --pipeline quick           # a finished run's model
    python -m benchmarks.edge_cache --fresh                                # a fresh ViT, random images
    python -m benchmarks.edge_cache --project P --warmup 10000             # cache warmed first
    python -m benchmarks.edge_cache --project P --jitter 0.3 --near 0.98   # near duplicates
    python -m benchmarks.edge_cache --project P --load                     # 50 req/s for 60 s over HTTP

Latency and energy per request are the service's ``latency_ms`` and ``energy_mj``: the
project's cost model (``costs`` params: link classes for every hop, device classes' busy power)
on the bytes each hop carried and the compute measured here (:mod:`ecogen.serving.chain`).
``--jitter F``: a fraction F of
requests carry a re-encoded copy of their image (±1 grey level on 5 % of pixels, seeded), which an
exact cache cannot match and a near-duplicate cache may.  ``--load`` starts ``ecogen serve`` with
uvicorn on 127.0.0.1 and sends ``--rate`` requests per second for ``--seconds`` (open loop: each
request leaves at its time whatever the earlier ones do), and counts errors and wall-clock latency.
``--mlflow`` logs the figures to an MLflow run (tag ``ecogen.kind=edge-cache``) in the project's
tracking store.  One JSON object goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecogen.models.vit import ViTConfig
from ecogen.serving.cache import EdgeCache
from ecogen.serving.chain import SplitChain, chain_from_run, fresh_chain
from ecogen.serving.service import EdgeService
from ecogen.serving.trace import ZipfTrace, zipf_trace


@dataclass
class Catalogue:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray | None  # int64 (N,); None: random images, no accuracy


def _chain(args: argparse.Namespace) -> tuple[SplitChain, Catalogue]:
    if args.fresh:  # no run: a fresh ViT of the default shape on random images
        chain = fresh_chain(ViTConfig(), seed=args.seed)
        rng = np.random.default_rng(args.seed)
        images = rng.integers(0, 256, size=(args.catalogue, *chain.image_shape), dtype=np.uint8)
        return chain, Catalogue(images, None)
    chain, test = chain_from_run(args.project.resolve(), args.pipeline, args.domain)
    return chain, Catalogue(test.x.numpy(), test.y.numpy())


def requests_of(trace: ZipfTrace, cat: Catalogue, jitter: float, seed: int) -> list[np.ndarray]:
    """The images the trace asks for, a ``jitter`` fraction of them re-encoded (seeded)."""
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the trace's draws stay as they are
    out = []
    for idx in trace.images:
        image = cat.images[idx]
        if jitter and rng.random() < jitter:
            flip = rng.random(image.shape) < 0.05
            step = rng.choice(np.array([-1, 1]), size=image.shape)
            image = np.clip(image.astype(np.int16) + flip * step, 0, 255).astype(np.uint8)
        out.append(image)
    return out


def replay(service: EdgeService, images: list[np.ndarray]) -> list[dict[str, Any]]:
    return [service.predict(image) for image in images]


def summary(replies: list[dict[str, Any]], labels: np.ndarray | None) -> dict[str, float]:
    lat = np.array([r["latency_ms"] for r in replies])
    compute_ms = np.array([r["compute_ms"] for r in replies])
    moved = np.array([r["bytes"] for r in replies], dtype=np.float64)
    energy_mj = np.array([r["energy_mj"] for r in replies])
    out = {
        "hit_rate": float(np.mean([r["cached"] for r in replies])),
        "near_hit_rate": float(np.mean([r["near"] for r in replies])),
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "mean_ms": float(lat.mean()),
        "compute_ms_mean": float(compute_ms.mean()),
        "bytes_per_request": float(moved.mean()),
        "energy_mj_per_request": float(energy_mj.mean()),
    }
    if labels is not None:
        out["accuracy"] = float(np.mean([r["class"] == y for r, y in zip(replies, labels, strict=True)]))
    return out


def agreement(cached: list[dict[str, Any]], plain: list[dict[str, Any]], labels: np.ndarray | None) -> dict:
    """On the requests the cache answered: does its answer equal the chain's for the same request?"""
    out: dict[str, float] = {}
    for name, pick in (("exact", lambda r: r["cached"] and not r["near"]), ("near", lambda r: r["near"])):
        idx = [i for i, r in enumerate(cached) if pick(r)]
        if not idx:
            continue
        out[f"{name}_hits"] = float(len(idx))
        out[f"{name}_hit_agreement"] = float(np.mean([cached[i]["class"] == plain[i]["class"] for i in idx]))
        if labels is not None:
            out[f"{name}_hit_accuracy_cached"] = float(
                np.mean([cached[i]["class"] == labels[i] for i in idx])
            )
            out[f"{name}_hit_accuracy_uncached"] = float(
                np.mean([plain[i]["class"] == labels[i] for i in idx])
            )
    return out


def hit_rate_by_capacity(
    trace: ZipfTrace, images: list[np.ndarray], capacities: list[int]
) -> dict[str, float]:
    """Exact-match hit rate of the trace at other capacities (keys only, no model): where the
    chosen capacity sits."""
    from ecogen.serving.cache import Prediction, content_key

    keys = [content_key(image) for image in images]
    out = {}
    for capacity in capacities:
        cache = EdgeCache(capacity)
        for key in keys:
            if cache.lookup(key)[0] is None:
                cache.put(key, Prediction(0, ()))
        out[str(capacity)] = cache.stats().hit_rate
    return out


def run_replay(args: argparse.Namespace) -> dict[str, Any]:
    chain, cat = _chain(args)
    trace = zipf_trace(args.requests, args.catalogue, len(cat.images), args.s, args.seed)
    images = requests_of(trace, cat, args.jitter, args.seed)
    labels = cat.labels[trace.images] if cat.labels is not None else None
    _say(f"{len(images)} requests over {args.catalogue} items, Zipf({args.s}), seed {args.seed}")
    t0 = time.perf_counter()
    plain = replay(EdgeService(chain), images)
    _say(f"no cache: {time.perf_counter() - t0:.1f} s")
    cache = EdgeCache(args.capacity, args.near)
    service = EdgeService(chain, cache)
    if args.warmup:
        warm = zipf_trace(args.warmup, args.catalogue, len(cat.images), args.s, args.seed + 1)
        replay(service, requests_of(warm, cat, args.jitter, args.seed + 1))
        _say(f"warmed on {args.warmup} requests (seed {args.seed + 1}): {cache.stats()}")
    t0 = time.perf_counter()
    cached = replay(service, images)
    _say(f"cache: {time.perf_counter() - t0:.1f} s")
    no, yes = summary(plain, labels), summary(cached, labels)
    return {
        "no_cache": no,
        "cache": yes,
        "p95_ratio": yes["p95_ms"] / no["p95_ms"],
        "p50_ratio": yes["p50_ms"] / no["p50_ms"],
        "energy_ratio": yes["energy_mj_per_request"] / no["energy_mj_per_request"],
        "hits": agreement(cached, plain, labels),
        "cache_stats": service.stats(),
        "hit_rate_by_capacity": hit_rate_by_capacity(trace, images, [50, 100, 200, 500, 1000]),
    }


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path.cwd(), help="project holding runs/PIPELINE/")
    ap.add_argument("--pipeline", default=None, help="whose run's model (default: pipelines.yaml's)")
    ap.add_argument("--domain", default=None, help="the edge (default: the first)")
    ap.add_argument("--fresh", action="store_true", help="a fresh ViT on random images, no run")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--catalogue", type=int, default=1000)
    ap.add_argument("--s", type=float, default=1.0, help="Zipf exponent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--capacity", type=int, default=1000)
    ap.add_argument("--near", type=float, default=None, help="near-duplicate cosine threshold")
    ap.add_argument("--jitter", type=float, default=0.0, help="fraction of requests re-encoded")
    ap.add_argument("--warmup", type=int, default=0, help="requests (seed+1) through the cache first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings)")
    ap.add_argument("--load", action="store_true", help="HTTP load test instead of the replay")
    ap.add_argument("--rate", type=float, default=50.0, help="--load: requests per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="--load: how long")
    ap.add_argument("--mlflow", action="store_true", help="log the figures to an MLflow run")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    if args.load:
        from benchmarks.edge_load import run_load

        result = run_load(args)
    else:
        result = run_replay(args)
    # timings are only as good as the machine is quiet: compare the load with the cores
    result["meta"] = {"cpu_count": os.cpu_count(), "load_avg_1m": [load_before, os.getloadavg()[0]]}
    result["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.mlflow:
        log_to_mlflow(result, args)
    return 0


def log_to_mlflow(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The figures, flattened (``cache/p95_ms``), as one run of the project's experiment."""
    from mlflow.entities import Metric, Param

    from ecogen.config.load import resolve_run
    from ecogen.tracking.runs import KIND, tracking_client

    root = args.project.resolve()
    client, exp = tracking_client(resolve_run(root, args.pipeline).params, root)
    run = client.create_run(
        exp, run_name="edge-cache-load" if args.load else "edge-cache", tags={KIND: "edge-cache"}
    )
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in _flat(result).items()]
    params = [Param(key, str(value)) for key, value in result["args"].items()]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id)
    _say(f"logged to MLflow run {run.info.run_id}")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("args", "meta"):
            out |= _flat(value, f"{name}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
