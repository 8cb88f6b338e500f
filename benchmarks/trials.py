"""An experiment's trials one after another against side by side (``trials.parallel``).

Prints one JSON object on stdout (progress on stderr)::

    ecogen run baselines --profile cpu          # once: the data, FM and edge modules it reads
    python -m benchmarks.trials                 # two pooled-labels trials (one learner each)
    python -m benchmarks.trials --trial ecogen:0 --trial ecogen:1   # two of EcoGen's (7 lanes)

The trials' ``hfsl`` stage (the function ``ecogen run`` calls, no tracking) runs on a copy-free
view of ``runs/<pipeline>/``'s data and artifacts, its outputs in a temporary folder: first
one trial after another with torch's threads (``in_turn``), then all at once through
:func:`ecogen.runtime.parallel.at_once`, the cores shared (``at_once``).  For each group of trials: the
seconds of both, ``speedup`` = in_turn ÷ at_once, and every trial's end accuracy both ways (a
trial's numbers depend on the threads it had: floating-point summation order).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench import report
from ecogen.config.load import expand_trials, load_params, load_pipelines, profile_overrides
from ecogen.config.pipelines import Trial
from ecogen.runtime.parallel import at_once
from ecogen.stages.hfsl import hfsl
from ecogen.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def _trials(args: argparse.Namespace) -> list[Trial]:
    specs = load_pipelines(args.project / "pipelines.yaml")
    spec = specs.pipelines[args.pipeline]
    profile = profile_overrides(specs, args.profile)
    params = load_params(args.project / "params.yaml", spec.overrides, [], profile)
    every = {f"{t.row}:{t.replicate}": t for t in expand_trials(params, spec.trials)}
    missing = [name for name in args.trial if name not in every]
    if missing:
        raise SystemExit(f"no such trial in {args.pipeline}: {missing}; known: {sorted(every)}")
    return [every[name] for name in args.trial]


def _view(source: Path, tmp: Path, profile: str | None) -> Path:
    """A workspace reading ``source``'s data and artifacts, writing its trials' outputs in ``tmp``."""
    for needed in ("data", "artifacts/fm.pt", "artifacts/edges"):
        if not (source / needed).exists():
            given = f" --profile {profile}" if profile else ""
            raise SystemExit(f"{source / needed} is missing: run `ecogen run {source.name}{given}` first")
    (tmp / "artifacts").mkdir(parents=True)
    (tmp / "data").symlink_to(source / "data")
    for name in ("fm.pt", "edges"):
        (tmp / "artifacts" / name).symlink_to(source / "artifacts" / name)
    return tmp


def _one(trial: Trial, root: Path, tag: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    result = hfsl(trial.params, Workspace(root, trial=f"{tag}-{trial.name}"))
    return time.perf_counter() - t0, result.metrics["mean_accuracy"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    trials = _trials(args)
    out: dict[str, Any] = {"pipeline": args.pipeline, "profile": args.profile, "at_once": args.at_once}
    with tempfile.TemporaryDirectory(prefix="ecogen-trials-") as tmp:
        root = _view(args.project / "runs" / args.pipeline, Path(tmp), args.profile)
        t0 = time.perf_counter()
        in_turn = [_one(t, root, "in-turn") for t in trials]
        seconds_in_turn = time.perf_counter() - t0
        t0 = time.perf_counter()
        side_by_side = at_once([lambda t=t: _one(t, root, "at-once") for t in trials], args.at_once)
        seconds_at_once = time.perf_counter() - t0
    out |= {
        "threads": torch.get_num_threads(),
        "seconds": {"in_turn": seconds_in_turn, "at_once": seconds_at_once},
        "speedup": seconds_in_turn / seconds_at_once,
        "trials": {
            t.name: {"in_turn": {"s": a[0], "accuracy": a[1]}, "at_once": {"s": b[0], "accuracy": b[1]}}
            for t, a, b in zip(trials, in_turn, side_by_side, strict=True)
        },
    }
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", default="baselines")
    ap.add_argument("--profile", default="cpu", help="as given to `ecogen run` (none: as written)")
    ap.add_argument(
        "--trial", action="append", default=None, metavar="ROW:REPLICATE", help="repeatable (default below)"
    )
    ap.add_argument("--at-once", type=int, default=2)
    ap.add_argument("--project", type=Path, default=ROOT, help="its params.yaml, pipelines.yaml and runs/")
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)
    args.profile = None if args.profile == "none" else args.profile
    args.trial = args.trial or ["pooled-labels:0", "pooled-labels:1"]
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return report(run, parse_args(argv))


if __name__ == "__main__":
    main()
