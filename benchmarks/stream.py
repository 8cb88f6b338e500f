"""The stream experiment: continuous (warm start + gate) beside retraining from scratch, over seeds.

For each mode and seed, ``ecogen run stream`` once per increment, in the project in the current
folder (each run takes in the next increment; a seed and a mode are a stream of their own, with
their own registered models), then the stream table and its targets as ``ecogen report --pipeline
stream`` shows them::

    python -m benchmarks.stream                          # seeds 0 1 2, continuous and retrain
    python -m benchmarks.stream --seeds 0 --set hfsl.rounds=2    # a smoke run

Each run's output goes to ``runs/stream-bench/<mode>-s<seed>-<k>.log``; progress on stderr.  A
stream whose increments are all in already is skipped run by run ("nothing to do"), so an
interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ecogen.config.load import resolve_run
from ecogen.reporting.stream import stream_checks, stream_markdown
from ecogen.reporting.tables import targets_markdown
from ecogen.tracking.runs import tracking_client
from ecogen.tracking.stream_report import STREAM_PIPELINE, load_stream


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--modes", nargs="+", default=["continuous", "retrain"], choices=["continuous", "retrain"]
    )
    ap.add_argument("--profile", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    root = Path.cwd()
    cfg = resolve_run(root, STREAM_PIPELINE, args.profile, args.sets)
    increments = cfg.params.stream.increments or 1
    logs = root / "runs" / "stream-bench"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for seed in args.seeds:
        for mode in args.modes:
            for k in range(increments):
                sets = [*args.sets, f"seed={seed}", f"stream.mode={mode}"]
                cmd = ["ecogen", "run", STREAM_PIPELINE, *(f"--set={s}" for s in sets)]
                cmd += ["--profile", args.profile] if args.profile else []
                log = logs / f"{mode}-s{seed}-{k}.log"
                t = time.perf_counter()
                with log.open("w") as out:
                    rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
                said = log.read_text().strip().splitlines()
                print(
                    f"[{time.perf_counter() - start:7.0f} s] {mode} seed {seed} run {k}: exit {rc} in "
                    f"{time.perf_counter() - t:.0f} s ({said[-1] if rc == 0 and len(said) == 1 else log})",
                    file=sys.stderr,
                )
                if rc != 0:
                    return rc
    client, exp = tracking_client(cfg.params, root)
    points = load_stream(client, exp, STREAM_PIPELINE, args.profile)
    print(stream_markdown(points))
    print()
    print(targets_markdown(stream_checks(points)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
