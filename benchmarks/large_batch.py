"""Pre-training at a larger batch: which learning-rate rule keeps the FM as good (seeds × rules).

A GPU pre-trains fastest at batches of thousands; the FM must come out as good as at the batch
the learning rate was tuned at.  This runs EcoGen's own prepare, pretrain and finetune stage
functions on one prepared data set (the ``--pipeline``'s params, ``quick`` by default) for the
base batch and for ``--factor`` × that batch under each ``pretrain.lr_scaling`` rule (none, sqrt,
linear, see ecogen/config/params.py), plus the sqrt rule with ``--epochs-factor`` × the epochs (a
large batch takes fewer steps an epoch).  Each setting runs for every ``--seeds`` seed; printed
as JSON: per setting the final MAE loss and the fine-tuned edge's test accuracy (mean, std,
values), and seconds::

    python -m benchmarks.large_batch                     # quick's sizes, batch 128 vs 512, 3 seeds
    python -m benchmarks.large_batch --tiny --seeds 0    # smoke run
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import report, shared_args
from ecogen.config import Params, load_params, load_pipelines
from ecogen.workspace import Workspace

# a smoke run: tiny data and model, one epoch each
TINY_OVERRIDES = [
    "data.public_pool=400",
    "data.edge_labelled=100",
    "data.test_per_domain=100",
    "model.dim=16",
    "model.depth=1",
    "model.heads=2",
    "pretrain.epochs=1",
    "peft.epochs=1",
]


def settings(base: Params, factor: int, epochs_factor: int) -> dict[str, dict[str, Any]]:
    """Setting name → pretrain overrides."""
    b, e = base.pretrain.batch_size, base.pretrain.epochs
    big = {"batch_size": b * factor, "lr_batch": b}
    return {
        f"batch {b}": {},
        f"batch {b * factor}, lr as tuned": {**big, "lr_scaling": "none"},
        f"batch {b * factor}, sqrt rule": {**big, "lr_scaling": "sqrt"},
        f"batch {b * factor}, linear rule": {**big, "lr_scaling": "linear"},
        f"batch {b * factor}, sqrt rule, {epochs_factor}× epochs": {
            **big,
            "lr_scaling": "sqrt",
            "epochs": e * epochs_factor,
        },
    }


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ecogen.stages.finetune import finetune_edge
    from ecogen.stages.prepare import prepare
    from ecogen.stages.pretrain import pretrain

    specs = load_pipelines(args.pipelines)
    extra = TINY_OVERRIDES if args.tiny else []
    base = load_params(args.params, specs.pipelines[args.pipeline].overrides, [*extra, "accelerator=cpu"])
    domain = str(base.data.domains[0])
    out: dict[str, Any] = {"pipeline": args.pipeline, "domain": domain, "seeds": args.seeds, "settings": {}}
    with tempfile.TemporaryDirectory(prefix="large-batch-") as tmp:
        data_ws = Workspace(Path(tmp) / "data-only")
        prepare(base, data_ws)  # one data set for every setting and seed
        for name, over in settings(base, args.factor, args.epochs_factor).items():
            losses, accuracies, seconds = [], [], []
            for seed in args.seeds:
                p = base.model_copy(update={"seed": seed, "pretrain": base.pretrain.model_copy(update=over)})
                ws = Workspace(Path(tmp) / f"{len(out['settings'])}-{seed}")
                shutil.copytree(data_ws.data, ws.data)
                start = time.perf_counter()
                fm = pretrain(p, ws)
                edge = finetune_edge(p, ws, domain)
                seconds.append(time.perf_counter() - start)
                losses.append(fm.metrics["mae_loss"])
                accuracies.append(edge.metrics["accuracy"])
                print(f"large_batch: {name} seed {seed}: mae_loss {losses[-1]:.4f}, acc {accuracies[-1]:.4f}")
            out["settings"][name] = {
                "pretrain": {
                    "batch_size": p.pretrain.batch_size,
                    "lr": p.pretrain.scaled_lr(),
                    "epochs": p.pretrain.epochs,
                },
                "mae_loss": _summary(losses),
                "accuracy": _summary(accuracies),
                "seconds": _summary(seconds),
            }
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = shared_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("--pipeline", default="quick")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pipelines", default="pipelines.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--factor", type=int, default=4, help="the large batch is this × the pipeline's")
    ap.add_argument("--epochs-factor", type=int, default=3)
    return report(run, ap.parse_args(argv))


if __name__ == "__main__":
    main()
