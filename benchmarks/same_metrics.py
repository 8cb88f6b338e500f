"""Do two commits give the same numbers?  Every MLflow metric of the same runs, digit for digit.

For a redesign that must not change behaviour: each commit is checked out in a git worktree, each
run (a pipeline with its ``--set`` overrides) goes in a fresh project folder with that commit's
``params.yaml`` and ``pipelines.yaml`` and that commit's code on ``PYTHONPATH``, then every run of
the two MLflow stores is matched by what it is (kind, pipeline, stage, edge, row, replicate,
cycle) and every metric's whole history compared exactly.  Wall times, energy and throughput move
from run to run and are left out (listed at the end); logged training losses are compared but
reported apart (see ``LOSS``)::

    python -m benchmarks.same_metrics 8be6c2f HEAD                  # quick, default, tiny
    python -m benchmarks.same_metrics 8be6c2f HEAD --runs quick     # one of them
    python -m benchmarks.same_metrics HEAD HEAD --runs quick        # is a run deterministic?

A commit's finished runs are kept under ``--work`` (default /tmp/ecogen-same-metrics) and reused,
so comparing a new commit against the same base runs the base once.  Exit status 1 when an
accuracy, a byte count or any other non-loss metric differs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# name -> (pipeline, --set overrides)
RUNS: dict[str, tuple[str, list[str]]] = {
    "quick": ("quick", []),
    "default": ("default", []),
    "tiny": (  # an experiment: every baseline row, at toy scale
        "baselines",
        [
            "data.public_pool=2000",
            "data.test_per_domain=200",
            "data.edge_labelled=200",
            "data.samples_per_cluster=300",
            "model.dim=32",
            "model.depth=2",
            "model.heads=2",
            "pretrain.epochs=2",
            "peft.epochs=3",
            "hfsl.rounds=2",
            "hfsl.local_steps=3",
        ],
    ),
}
# Tags that say what a run is; two stores' runs are matched on them.
IDENTITY = (
    "ecogen.kind",
    "ecogen.pipeline",
    "ecogen.stage",
    "ecogen.edge",
    "ecogen.row",
    "ecogen.replicate",
    "ecogen.cycle",
)
# Training losses as logged (Lightning's epoch means): between two runs of one commit these have
# been seen to part in the last bit at an epoch or two while every accuracy, byte and count, and so
# every weight, stays identical; they are listed apart and do not fail the comparison.
LOSS = re.compile(r"loss")
# Metrics measured on the host, not computed by the method: they move from run to run.
VOLATILE = re.compile(
    r"duration|seconds|_s$|_s_|per_s|_ms|energy|emissions|kwh|time|wall|cpu|ram_|power|load"
)


def worktree(repo: Path, commit: str, work: Path) -> tuple[str, Path]:
    sha = subprocess.run(
        ["git", "rev-parse", "--short", commit], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = work / f"tree-{sha}"
    if not tree.is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=repo, check=True)
    return sha, tree


def run_once(tree: Path, project: Path, pipeline: str, sets: list[str]) -> float:
    """``ecogen run`` with ``tree``'s code in ``project`` (made afresh); seconds, or 0 if reused."""
    done = project / ".finished"
    if done.is_file():
        return 0.0
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    for name in ("params.yaml", "pipelines.yaml"):
        shutil.copy(tree / name, project / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API"))}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "ecogen.cli", "run", pipeline, *(f"--set={s}" for s in sets)]
    start = time.perf_counter()
    with (project / "run.log").open("w") as log:
        rc = subprocess.run(cmd, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {project} (exit {rc}); see {project / 'run.log'}")
    done.touch()
    return time.perf_counter() - start


def metrics_of(project: Path) -> tuple[dict[tuple[str, ...], dict[str, list[float]]], set[str]]:
    """Run identity -> metric -> its history (values in step order); and the volatile names."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    out: dict[tuple[str, ...], dict[str, list[float]]] = {}
    volatile: set[str] = set()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_id: r for r in client.search_runs(experiments, max_results=50000)}

    def identity(run_id: str) -> tuple[str, ...]:  # its tags and name, after its parents'
        run = runs[run_id]
        parent = run.data.tags.get("mlflow.parentRunId")
        own = (run.info.run_name or "", *(run.data.tags.get(t, "") for t in IDENTITY))
        return (*(identity(parent) if parent in runs else ()), *own)

    for run in runs.values():
        key = identity(run.info.run_id)
        if key in out:
            raise SystemExit(f"{project}: two runs are {key}; IDENTITY does not tell them apart")
        history = {}
        for name in run.data.metrics:
            if VOLATILE.search(name):
                volatile.add(name)
                continue
            points = client.get_metric_history(run.info.run_id, name)
            history[name] = [m.value for m in sorted(points, key=lambda m: (m.step, m.timestamp))]
        out[key] = history
    return out, volatile


def _gap(x: list[float] | None, y: list[float] | None) -> str:
    """Where two histories part: the first step that differs and the largest relative gap."""
    if x is None or y is None or len(x) != len(y):
        return f"{x} -> {y}"
    steps = [i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q]
    rel = max(abs(x[i] - y[i]) / max(abs(x[i]), abs(y[i]), 1e-30) for i in steps)
    return f"{len(steps)} of {len(x)} steps differ (first: step {steps[0]}), relative gap up to {rel:.1e}"


def compare(old: Path, new: Path) -> tuple[int, int, list[str], list[str], set[str]]:
    """(runs, metrics compared, differences in accuracies, bytes and counts, differences in
    losses, volatile names left out)."""
    a, va = metrics_of(old)
    b, vb = metrics_of(new)
    diffs = [f"run only in the old store: {k}" for k in sorted(a.keys() - b.keys())]
    diffs += [f"run only in the new store: {k}" for k in sorted(b.keys() - a.keys())]
    losses = []
    compared = 0
    for key in sorted(a.keys() & b.keys()):
        for name in sorted(a[key].keys() | b[key].keys()):
            x, y = a[key].get(name), b[key].get(name)
            compared += 1
            if x != y:
                said = f"{'/'.join(k for k in key if k)} {name}: {_gap(x, y)}"
                (losses if LOSS.search(name) and x and y else diffs).append(said)
    return len(a.keys() & b.keys()), compared, diffs, losses, va | vb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--work", type=Path, default=Path("/tmp/ecogen-same-metrics"))
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    args.work.mkdir(parents=True, exist_ok=True)
    trees = [worktree(repo, c, args.work) for c in (args.old, args.new)]
    failed = False
    for name in args.runs:
        pipeline, sets = RUNS[name]
        projects = []
        for i, (sha, tree) in enumerate(trees):  # one commit twice: is the run deterministic?
            project = args.work / f"{name}-{sha}{'-again' if i and sha == trees[0][0] else ''}"
            print(f"{name} at {sha}: running ...", file=sys.stderr, flush=True)
            took = run_once(tree, project, pipeline, sets)
            print(f"{name} at {sha}: {'reused' if not took else f'{took:.0f} s'}", file=sys.stderr)
            projects.append(project)
        runs, compared, diffs, losses, volatile = compare(*projects)
        verdict = "IDENTICAL" if not diffs else f"{len(diffs)} DIFFER"
        print(f"{name} ({pipeline}): {runs} runs, {compared} metric histories compared; accuracies, bytes")
        print(f"  and counts: {verdict}; losses: {len(losses) or 'none'} differ")
        for d in [*diffs[:30], *losses[:10]]:
            print(f"  {d}")
        print(f"  left out (host-measured): {', '.join(sorted(volatile)) or 'none'}")
        failed |= bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
