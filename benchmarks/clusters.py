"""Many clusters per edge, few a round (``hfsl.clusters_per_round``): does a round cost what the
clusters drawn cost, whatever the clusters there are?

Prints one JSON object on stdout (progress on stderr)::

    python -m benchmarks.clusters                  # 10 clusters, all a round, vs 10 of 1,000
    python -m benchmarks.clusters --tiny --population 30 --per-round 3 --rounds 2   # smoke run

Two configurations of one edge (the default recipe: labels only, batched driver, the edge's own
labelled set as a participant), their clusters' data written once to a temporary folder in the
prepared layout (one file per cluster, read when a cluster takes part):

* ``all``: ``--per-round`` clusters in all, every one in every round;
* ``drawn``: ``--population`` clusters, ``--per-round`` of them drawn each round.

Each runs ``--rounds`` rounds in a fresh Python process of its own, so its peak memory (the
process's RSS high-water mark, ``getrusage``) is its own; ``--repeats`` times, alternating which
goes first.  Per configuration: seconds per round (median over rounds after the first, and over
repeats), the peak RSS and the RSS before the first round (MiB, the largest over repeats), and
edge↔client bytes per round.  ``ratios``: drawn ÷ all of the seconds per round, of the peak RSS
and of what the rounds added to the RSS (peak − before); the target is ≤ 1.5 for the first two.
``population_data_mib``: the size of every cluster's file, what holding them all would take.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench import TINY, default_config, edge_model, meta, report, shared_args, synthetic_split
from ecogen.config.params import HfslParams
from ecogen.data.prepared import SplitFile, save_split
from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges
from ecogen.models.vit import ViTConfig
from ecogen.split.channel import Channel

log = logging.getLogger("ecogen.bench")

TARGET = 1.5  # drawn ÷ all, of seconds per round and of peak memory
CONFIGS = ("all", "drawn")
ROOT = Path(__file__).resolve().parents[1]


def _mib(kib: float) -> float:
    return kib / 1024


def _rss_kib() -> float:
    """This process's resident set now (KiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def _peak_kib() -> float:
    """This process's RSS high-water mark (KiB; macOS reports bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else float(peak)


def _cluster_path(folder: Path, k: int) -> Path:
    return folder / f"cluster_{k}.pt"


def write_clusters(folder: Path, cfg: ViTConfig, args: argparse.Namespace) -> None:
    """The population's clusters, one file each (the prepared layout), written one at a time."""
    g = torch.Generator().manual_seed(args.seed)
    labelled = max(1, round(0.1 * args.per_cluster))
    for k in range(max(args.population, args.per_round)):
        save_split(synthetic_split(args.per_cluster, labelled, cfg, g), _cluster_path(folder, k))


def one(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration's rounds, in this process (the child's side)."""
    cfg = TINY if args.tiny else default_config()
    drawn = args.config == "drawn"
    clusters = args.population if drawn else args.per_round
    h = HfslParams(
        clusters=clusters,
        clusters_per_round=args.per_round if drawn else None,
        rounds=args.rounds,
        unlabelled_weight=0.0,
    )
    folder = Path(args.data)
    sources = [SplitFile(_cluster_path(folder, k), args.per_cluster) for k in range(clusters)]
    own = synthetic_split(args.edge_labelled, args.edge_labelled, cfg, torch.Generator().manual_seed(1))
    clock: list[float] = []

    def tick(model: object) -> float:  # "evaluation" after every round: the round's end
        clock.append(time.perf_counter())
        return 0.0

    job = EdgeJob("edge", edge_model(cfg, args.seed), sources, tick, args.seed, Channel(), own=own)
    before = _rss_kib()
    start = time.perf_counter()
    out = run_hfsl_edges([job], h, args.accelerator)["edge"]
    times = [b - a for a, b in zip([start, *clock], clock, strict=False)]
    return {
        "clusters": clusters,
        "clusters_per_round": args.per_round,
        "seconds_per_round": times,
        "rss_before_rounds_mib": _mib(before),
        "peak_rss_mib": _mib(_peak_kib()),
        "clusters_trained": out.per_round("trained"),
        "edge_client_bytes_per_round": [
            sum(v for k, v in r.items() if k.startswith("edge_client/")) for r in out.bytes_per_round
        ],
    }


def _child(config: str, data: Path, argv: Sequence[str]) -> dict[str, Any]:
    """:func:`one` in a fresh interpreter; its JSON from stdout."""
    cmd = [sys.executable, "-m", "benchmarks.clusters", *argv, "--config", config, "--data", str(data)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [t for r in runs for t in (r["seconds_per_round"][1:] or r["seconds_per_round"])]
    peak = max(r["peak_rss_mib"] for r in runs)
    before = max(r["rss_before_rounds_mib"] for r in runs)
    return {
        "clusters": runs[0]["clusters"],
        "clusters_per_round": runs[0]["clusters_per_round"],
        "seconds_per_round": statistics.median(timed),
        "seconds_per_round_each": [r["seconds_per_round"] for r in runs],
        "peak_rss_mib": peak,
        "rss_before_rounds_mib": before,
        "rounds_rss_mib": max(r["peak_rss_mib"] - r["rss_before_rounds_mib"] for r in runs),
        "clusters_trained": runs[0]["clusters_trained"],
        "edge_client_bytes_per_round": runs[0]["edge_client_bytes_per_round"][-1],
    }


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    cfg = TINY if args.tiny else default_config()
    result: dict[str, Any] = {"meta": meta(cfg, args)}
    t0 = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="ecogen-clusters-") as tmp:
        write_clusters(Path(tmp), cfg, args)
        # what holding every cluster's data would take (the drawing run reads 10 a round)
        result["population_data_mib"] = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
        log.info("clusters: %d clusters of %d images written", args.population, args.per_cluster)
        for rep in range(args.repeats):
            for config in CONFIGS if rep % 2 == 0 else CONFIGS[::-1]:
                runs[config].append(_child(config, Path(tmp), argv))
                r = runs[config][-1]
                log.info(
                    "clusters: %s (%d clusters, %d a round) %s s/round, peak %.0f MiB",
                    config,
                    r["clusters"],
                    args.per_round,
                    " ".join(f"{t:.2f}" for t in r["seconds_per_round"]),
                    r["peak_rss_mib"],
                )
    a, b = _summary(runs["all"]), _summary(runs["drawn"])
    ratios = {
        key: b[key] / a[key] for key in ("seconds_per_round", "peak_rss_mib", "rounds_rss_mib") if a[key] > 0
    }
    result |= {
        "all": a,
        "drawn": b,
        "ratios": ratios,
        "target": TARGET,
        "met": ratios["seconds_per_round"] <= TARGET and ratios["peak_rss_mib"] <= TARGET,
    }
    result["meta"]["wall_s"] = time.perf_counter() - t0
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4, help="HFSL rounds per run (the first is not timed)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each configuration, alternating")
    ap.add_argument("--population", type=int, default=1000, help="clusters of the edge that draws")
    ap.add_argument("--per-round", type=int, default=10, help="clusters a round: all of `all`'s")
    ap.add_argument("--per-cluster", type=int, default=500, help="images per cluster (λ = 0.1 labelled)")
    ap.add_argument("--edge-labelled", type=int, default=500, help="the edge's own labelled images")
    ap.add_argument("--accelerator", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--config", choices=CONFIGS, help=argparse.SUPPRESS)  # a child's one configuration
    ap.add_argument("--data", help=argparse.SUPPRESS)  # the child's clusters' folder
    return shared_args(ap).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.config:  # a child: its figures as JSON on stdout, nothing else there
        logging.getLogger("ecogen.hfsl").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(sys.stderr):
            figures = one(args)
        print(json.dumps(figures))
        return figures
    return report(lambda a: run(a, _without_out(argv)), args)


def _without_out(argv: list[str]) -> list[str]:
    """``argv`` less ``--out FILE`` (the parent writes the JSON, not its children)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            out.append(a)
    return out


if __name__ == "__main__":
    main()
