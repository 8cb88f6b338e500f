"""The HFSL round loop's two drivers side by side, and the loop against a bare torch loop.

Prints one JSON object on stdout (progress on stderr)::

    python -m benchmarks.drivers                 # the baselines CPU profile's HFSL sizes
    python -m benchmarks.drivers --tiny --rounds 2   # smoke run

* ``drivers``: ``--rounds`` HFSL rounds (labels only, the default recipe) of one edge with
  ``--clusters`` clusters of ``--per-cluster`` images (λ = 0.1) and the edge's own labelled set
  as a participant, once with ``driver: serial`` and once with ``driver: batched``, alternating
  which goes first over ``--repeats``.  Seconds per round (median over rounds after the first and
  over repeats), ``batched_speedup`` = serial ÷ batched, and the check that both gave the same
  modules (largest difference) and the same bytes.
* ``bare``: a plain torch loop (no Lightning, no split, no federation) training the same LoRA
  model's same tunable parameters with AdamW at the clients' batch size, and at the batch the
  batched driver stacks (participants × batch size); images per second of each, and
  ``hfsl_vs_bare`` = the HFSL loop's training images per second (images each round trains on ÷
  seconds per round, aggregation and delivery included) ÷ the bare loop's at the clients' batch.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.bench import TINY, default_config, edge_model, meta, report, shared_args, synthetic_split
from ecogen.config.params import HfslParams
from ecogen.data.prepared import to_float
from ecogen.federated.hfsl import EdgeJob, HfslOutcome, run_hfsl_edges
from ecogen.models.vit import ViTConfig
from ecogen.split.channel import Channel
from ecogen.training.resident import device_for

log = logging.getLogger("ecogen.bench")


def _hfsl(cfg: ViTConfig, h: HfslParams, args: argparse.Namespace) -> tuple[HfslOutcome, list[float]]:
    g = torch.Generator().manual_seed(args.seed)
    labelled = max(1, round(0.1 * args.per_cluster))
    clusters = [synthetic_split(args.per_cluster, labelled, cfg, g) for _ in range(h.clusters)]
    own = synthetic_split(args.edge_labelled, args.edge_labelled, cfg, g)
    clock: list[float] = []

    def tick(model: object) -> float:  # "evaluation" after every round: the round's end
        clock.append(time.perf_counter())
        return 0.0

    job = EdgeJob("edge", edge_model(cfg, args.seed), clusters, tick, args.seed, Channel(), own=own)
    start = time.perf_counter()
    out = run_hfsl_edges([job], h, args.accelerator)["edge"]
    times = [b - a for a, b in zip([start, *clock], clock, strict=False)]
    return out, times


def drivers(cfg: ViTConfig, args: argparse.Namespace) -> dict[str, Any]:
    base = dict(clusters=args.clusters, rounds=args.rounds, unlabelled_weight=0.0)
    seconds: dict[str, list[float]] = {"serial": [], "batched": []}
    windows: dict[str, list[list[float]]] = {"serial": [], "batched": []}  # wall-clock (epoch s) spans
    outcomes: dict[str, HfslOutcome] = {}
    for rep in range(args.repeats):
        for driver in ("serial", "batched") if rep % 2 == 0 else ("batched", "serial"):
            began = time.time()
            out, times = _hfsl(cfg, HfslParams(**base, driver=driver), args)
            windows[driver].append([began, time.time()])
            seconds[driver] += times[1:] or times  # the first round warms up
            outcomes[driver] = out
            log.info("drivers: %s %s s/round", driver, " ".join(f"{t:.2f}" for t in times))
    s, b = outcomes["serial"], outcomes["batched"]
    per_round = {d: statistics.median(t) for d, t in seconds.items()}
    images = s.per_round("images")[-1]
    return {
        "seconds_per_round": per_round,
        "batched_speedup": per_round["serial"] / per_round["batched"],
        "max_module_difference": max((s.state[k] - b.state[k]).abs().max().item() for k in s.state),
        "same_bytes": s.bytes_per_round == b.bytes_per_round,
        "bytes_per_round": s.bytes_per_round[-1],
        "participants": args.clusters + 1,
        "steps_per_round": s.per_round("steps")[-1],
        "images_per_round": images,
        "images_per_s": {d: images / t for d, t in per_round.items()},
        "windows": windows,
    }


def bare(cfg: ViTConfig, batch: int, steps: int, seed: int, accelerator: str = "cpu") -> float:
    """Images per second of a plain training loop on the LoRA model's tunable parameters."""
    device = device_for(accelerator)
    model = edge_model(cfg, seed).to(device)
    g = torch.Generator().manual_seed(seed)
    data = synthetic_split(batch * 4, batch * 4, cfg, g)
    x, y = to_float(data.x).to(device), data.y.to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0)

    def step(i: int) -> None:
        lo = (i % 4) * batch
        opt.zero_grad()
        F.cross_entropy(model(x[lo : lo + batch]), y[lo : lo + batch]).backward()
        opt.step()

    for i in range(3):  # warm-up
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4, help="HFSL rounds per run (the first is not timed)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each driver, alternating the order")
    ap.add_argument("--clusters", type=int, default=6)
    ap.add_argument("--per-cluster", type=int, default=1000, help="images per cluster (λ = 0.1 labelled)")
    ap.add_argument("--edge-labelled", type=int, default=500, help="the edge's own labelled images")
    ap.add_argument("--bare-steps", type=int, default=60, help="timed steps of the bare loop")
    ap.add_argument("--accelerator", default="cpu", help="cpu | cuda | auto")
    return shared_args(ap).parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = TINY if args.tiny else default_config()
    result: dict[str, Any] = {"meta": meta(cfg, args)}
    t0 = time.perf_counter()
    result["drivers"] = d = drivers(cfg, args)
    batch = HfslParams().batch_size
    clients = bare(cfg, batch, args.bare_steps, args.seed, args.accelerator)
    stacked_steps = max(3, args.bare_steps // d["participants"])
    stacked = bare(cfg, batch * d["participants"], stacked_steps, args.seed, args.accelerator)
    result["bare"] = {
        "images_per_s": {f"batch_{batch}": clients, f"batch_{batch * d['participants']}": stacked},
        "hfsl_vs_bare": {drv: rate / clients for drv, rate in d["images_per_s"].items()},
    }
    result["meta"]["wall_s"] = time.perf_counter() - t0
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return report(run, parse_args(argv))


if __name__ == "__main__":
    main()
