"""Block allocation rules compared on the cost model: modelled round latency and energy of one
cluster of heterogeneous devices under ``balanced``, ``front``, ``latency`` and ``energy``.

Prints one JSON object on stdout (or a Markdown table with ``--markdown``)::

    python -m benchmarks.allocation                   # the default ViT, every phone/board/weak order
    python -m benchmarks.allocation --markdown        # the table of docs/costs.md
    python -m benchmarks.allocation --depth 12        # a deeper ViT (ViT-B's block count)

The model is the LoRA edge model on the default ``model`` section of ``params.yaml`` (28×28×1
images, 10 classes), the costs and the client step are ``params.yaml``'s (``costs``, ``hfsl``).
Each cluster is a phone holding the data (start), one phone, one Jetson-class board and one weak
device in the middle in every order, and a phone at the end: the rules see the same devices in
different places, and ``balanced`` gives its extra blocks to the earliest middle devices.
Everything is modelled (``ecogen/costs/``), nothing is timed on this host; the split chain is
the same function under every rule, so accuracy does not move.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from benchmarks.bench import default_config, edge_model, report
from ecogen.config.load import load_params
from ecogen.config.params import ModelParams, Params
from ecogen.costs.flops import SegmentFlops, segment_flops
from ecogen.costs.round import round_costs

ROOT = Path(__file__).resolve().parents[1]
RULES = ("balanced", "front", "latency", "energy")
MIDDLE = ("phone", "board", "weak")


def clusters() -> list[list[str]]:
    """Start phone, every order of the heterogeneous middle devices, end phone."""
    return [["phone", *order, "phone"] for order in itertools.permutations(MIDDLE)]


def compare(params: Params, chain: list[str], model: nn.Module, flops: SegmentFlops) -> dict[str, Any]:
    """Every rule's ranges and modelled figures on one cluster, and the cut against balanced."""
    cluster = params.model_copy(
        update={
            "hfsl": params.hfsl.model_copy(update={"devices_per_cluster": len(chain)}),
            "costs": params.costs.model_copy(update={"cluster_devices": chain}),
        }
    )
    rows: dict[str, Any] = {}
    for rule in RULES:
        c = round_costs(cluster, model, rule, flops)
        rows[rule] = {
            "blocks": [[a, b] for a, b in c.blocks],
            "round_s": round(c.latency_s, 4),
            "device_j": round(c.device_energy_j, 3),
            "link_j": round(c.link_energy_j, 3),
        }
    base = rows["balanced"]
    for r in rows.values():  # relative change against balanced (negative: lower)
        r["round_vs_balanced"] = round(r["round_s"] / base["round_s"] - 1, 4)
        r["device_j_vs_balanced"] = round(r["device_j"] / base["device_j"] - 1, 4)
    return {"cluster": chain, "rules": rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = load_params(ROOT / "params.yaml")
    model_params = params.model.model_copy(update={"depth": args.depth}) if args.depth else params.model
    model = edge_model(default_config(ModelParams(**model_params.model_dump())), args.seed)
    flops = segment_flops(model, params.hfsl.batch_size, seed=args.seed)  # the same on every cluster
    results = [compare(params, chain, model, flops) for chain in clusters()]
    return {
        "meta": {"depth": model_params.depth, "seed": args.seed, "hfsl_step": _step(params)},
        "clusters": results,
    }


def _step(params: Params) -> dict[str, Any]:
    h = params.hfsl
    return {
        "local_steps": h.local_steps,
        "batch_size": h.batch_size,
        "unlabelled_weight": h.unlabelled_weight,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| cluster (start, middle…, end) | rule | blocks per middle device | round s | device J | link J "
        "| round s vs balanced | device J vs balanced |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for cluster in result["clusters"]:
        for rule, r in cluster["rules"].items():
            sizes = [b - a for a, b in r["blocks"]]
            figures = f"{r['round_s']:.3f} | {r['device_j']:.2f} | {r['link_j']:.2f}"
            change = f"{r['round_vs_balanced']:+.1%} | {r['device_j_vs_balanced']:+.1%}"
            lines.append(f"| {', '.join(cluster['cluster'])} | {rule} | {sizes} | {figures} | {change} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=None, help="blocks of the ViT (default: params.yaml's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="a Markdown table instead of JSON")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.markdown:
        result = run(args)
        print(markdown(result))
        return result
    return report(run, args)


if __name__ == "__main__":
    main(sys.argv[1:])
