"""A probe of an experiment's rows before a full run: the ``hfsl`` stage of chosen rows of a
pipeline (``pipelines.yaml``, with a profile) at one replicate and FM draw, one after another,
on a folder that already holds the pipeline's data, FM and edge modules (``runs/NAME`` for draw 0,
``runs/NAME@fm1`` for draw 1 …), its outputs in a temporary folder, nothing tracked.

Prints one JSON object: per row, its start and end accuracy, the round-by-round accuracy, the
bytes over the device links and the edge↔client links, the DP metrics a DP row logs (σ, ε spent),
and its seconds.  A probe is one seed:
say so wherever its numbers are quoted.  From the project root::

    python -m benchmarks.row_probe runs/baselines --pipeline hfsl-study \\
        --row lo-16-rounds-15-steps --row mae-0.5 --base mae-0.5 --set hfsl.mae_weight=1.0:mae-1.0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import report
from benchmarks.trials import _view
from ecogen.config.load import deep_merge, expand_trials, load_params, load_pipelines, profile_overrides
from ecogen.config.params import Params
from ecogen.stages.hfsl import hfsl
from ecogen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def _rows(args: argparse.Namespace) -> dict[str, Params]:
    """Each probed row's params: a pipeline row as written, or ``KEY=VALUE:NAME`` over ``--base``."""
    specs = load_pipelines(args.project / "pipelines.yaml")
    spec = specs.pipelines[args.pipeline]
    params = load_params(
        args.project / "params.yaml", spec.overrides, [], profile_overrides(specs, args.profile)
    )
    every = {
        t.row: t.params
        for t in expand_trials(params, spec.trials)
        if t.replicate == args.replicate and t.draw == args.draw
    }
    out = {}
    for row in args.row:
        if row not in every:
            raise SystemExit(f"no row {row!r} in {args.pipeline}; known: {sorted(every)}")
        out[row] = every[row]
    for item in args.set:
        assignment, _, name = item.rpartition(":")
        key, _, value = assignment.partition("=")
        base = every[args.base].model_dump(mode="json")
        nested: dict[str, Any] = {}
        level = nested
        *path, leaf = key.split(".")
        for part in path:
            level = level.setdefault(part, {})
        level[leaf] = float(value)
        out[name] = Params.model_validate(deep_merge(base, nested))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = _rows(args)
    out: dict[str, Any] = {"folder": str(args.folder), "pipeline": args.pipeline, "profile": args.profile}
    out |= {"replicate": args.replicate, "draw": args.draw, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="ecogen-probe-") as tmp:
        root = _view(args.folder, Path(tmp), args.profile)
        for name, params in rows.items():
            t0 = time.perf_counter()
            result = hfsl(params, Workspace(root, trial=name))
            edges = result.children
            out["rows"][name] = {
                "seconds": time.perf_counter() - t0,
                "start": [e.metrics["accuracy_start"] for e in edges],
                "end": [e.metrics["accuracy"] for e in edges],
                "accuracy": [e.history["accuracy"] for e in edges],
                "bytes_d2d": [sum(e.history["bytes_d2d"]) for e in edges],
                "bytes_edge_client": [sum(e.history["bytes_edge_client"]) for e in edges],
                # what a DP row spent (hfsl.dp_mechanism): σ, ε, DP-SGD's sampling rate
                "dp": [{k: v for k, v in e.metrics.items() if k.startswith("dp_")} for e in edges],
            }
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "folder", type=Path, help="a pipeline folder with data/, artifacts/fm.pt, artifacts/edges/"
    )
    ap.add_argument("--pipeline", default="hfsl-study")
    ap.add_argument("--profile", default="cpu", help="as given to `ecogen run` (none: as written)")
    ap.add_argument("--row", action="append", default=[], help="a row of the pipeline (repeatable)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE:NAME",
        help="a row NAME: --base with one numeric param changed, e.g. hfsl.mae_weight=1.0:mae-1.0",
    )
    ap.add_argument("--base", default="lo-16-rounds-15-steps", help="the row --set rows start from")
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--draw", type=int, default=0, help="the FM draw the folder holds")
    ap.add_argument("--project", type=Path, default=ROOT, help="its params.yaml and pipelines.yaml")
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)
    args.profile = None if args.profile == "none" else args.profile
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return report(run, parse_args(argv))


if __name__ == "__main__":
    main()
