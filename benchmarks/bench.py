"""Performance figures of the current code, printed as one JSON object on stdout.

Three parts, each selectable with ``--only``:

* ``split_step``: one LoRA training step through the split chain (three devices, one
  :class:`~ecogen.split.channel.Channel`) against the same step on the whole model, on the same
  batch, interleaved in one process; medians of ``--repeats`` timings.
* ``samples_per_s``: images per second of each stage's inner loop on CPU (pre-training,
  fine-tuning, one HFSL client step through Lightning, split inference), synthetic batches of
  the real shape.
* ``bytes_per_round``: bytes one round of :func:`~ecogen.federated.hfsl.run_hfsl` puts on the
  edge↔client and d2d links, for every method, measured by running that round.

Progress goes to stderr.  Run ``python benchmarks/bench.py > bench.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ecogen.config.params import (
    HfslParams,
    InferenceParams,
    ModelParams,
    PeftParams,
    PretrainParams,
)
from ecogen.data.prepared import UNLABELLED, Split
from ecogen.federated.hfsl import run_hfsl
from ecogen.federated.strategies import method_names, strategy_for
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import module_bytes, state_bytes, tunable_state
from ecogen.split.allocation import allocate_blocks
from ecogen.split.channel import Channel
from ecogen.split.client_training import ClientTraining
from ecogen.split.semi_supervised import StackedBatches, StackedSemiSupervised
from ecogen.split.stacked import StackedChain
from ecogen.stages.common import vit_config_for
from ecogen.training.augment import weak
from ecogen.training.trainer import make_trainer

log = logging.getLogger("ecogen.bench")

PARTS = ("split_step", "samples_per_s", "bytes_per_round")
RATIO_TARGET = 1.10
DEVICES = 3  # start (embedding), one middle (every block), end (head)

# Smoke-test size: same code paths, numbers not representative of the real model.
TINY = ViTConfig(
    image_size=8, channels=1, patch_size=2, num_classes=10, dim=16, depth=2, heads=2, decoder_dim=16
)


def default_config(model: ModelParams | None = None) -> ViTConfig:
    """The ViT that ``params.yaml``'s default ``model`` section builds for 28×28×1 images, 10 classes."""
    return vit_config_for(model or ModelParams(), image_size=28, channels=1, num_classes=10)


def edge_model(cfg: ViTConfig, seed: int) -> nn.Module:
    """A LoRA edge model (default :class:`PeftParams`) on a freshly initialised FM."""
    torch.manual_seed(seed)
    return build_edge_model(MaskedAutoencoder(ViT(cfg)), PeftParams(), seed)


def synthetic_images(n: int, cfg: ViTConfig, g: torch.Generator) -> Tensor:  # (n, C, H, W) in [-1, 1]
    return torch.rand(n, cfg.channels, cfg.image_size, cfg.image_size, generator=g) * 2 - 1


def synthetic_split(n: int, labelled: int, cfg: ViTConfig, g: torch.Generator) -> Split:
    """``n`` uint8 images with random labels, the first ``labelled`` of them kept."""
    x = torch.randint(
        0, 256, (n, cfg.channels, cfg.image_size, cfg.image_size), generator=g, dtype=torch.uint8
    )
    y = torch.randint(0, cfg.num_classes, (n,), generator=g)
    y[labelled:] = UNLABELLED
    return Split(x, y)


def one_lane(model: nn.Module, cfg: ViTConfig) -> StackedChain:
    """``model`` as one cluster's chain over ``DEVICES`` devices and one channel (what a client
    trains through)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return StackedChain(model, allocate_blocks(cfg.depth, DEVICES), [Channel()], names)


# --------------------------------------------------------------------------- split vs unsplit step


def split_step(
    cfg: ViTConfig, repeats: int = 30, batch: int = 64, warmup: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Median time of one LoRA training step, split over 3 devices vs whole, on one batch."""
    base = edge_model(cfg, seed)
    split_model, whole_model = copy.deepcopy(base), copy.deepcopy(base)
    lr = HfslParams().lr
    chain = one_lane(split_model, cfg)
    split_opt = torch.optim.AdamW(
        [p for p in chain.stacked().values() if p.requires_grad], lr=lr, weight_decay=0.0
    )
    whole_opt = torch.optim.AdamW(
        [p for p in whole_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0
    )

    g = torch.Generator().manual_seed(seed)
    x = synthetic_images(batch, cfg, g)
    y = torch.randint(0, cfg.num_classes, (batch,), generator=g)

    def split() -> None:
        split_opt.zero_grad()
        logits, trace = chain(x[None], [len(x)], [y], train=True)
        labels = trace.labels[0]
        labels = labels if labels is not None else y  # as the end device got them
        chain.backward(F.cross_entropy(logits[0], labels), trace)
        split_opt.step()

    def whole() -> None:
        whole_opt.zero_grad()
        F.cross_entropy(whole_model(x), y).backward()
        whole_opt.step()

    for _ in range(warmup):
        split()
        whole()
    times: dict[str, list[float]] = {"split": [], "unsplit": []}
    steps = {"split": split, "unsplit": whole}
    for r in range(repeats):
        order = ("split", "unsplit") if r % 2 == 0 else ("unsplit", "split")  # cancels drift
        for name in order:
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
    split_ms = 1e3 * statistics.median(times["split"])
    unsplit_ms = 1e3 * statistics.median(times["unsplit"])
    out = {
        "split_ms": split_ms,
        "unsplit_ms": unsplit_ms,
        "ratio": split_ms / unsplit_ms,
        "ratio_target": RATIO_TARGET,
        "repeats": repeats,
        "warmup": warmup,
        "batch": batch,
        "devices": DEVICES,
        "block_ranges": allocate_blocks(cfg.depth, DEVICES),
        "split_ms_min": 1e3 * min(times["split"]),
        "unsplit_ms_min": 1e3 * min(times["unsplit"]),
    }
    log.info("split_step: split %.2f ms, unsplit %.2f ms, ratio %.3f", split_ms, unsplit_ms, out["ratio"])
    return out


# --------------------------------------------------------------------------- stage throughput


def _throughput(step: Callable[[], int], seconds: float, warmup: int = 2, min_steps: int = 3) -> float:
    """Images per second of ``step`` (which returns the images it processed), run for ~``seconds``."""
    for _ in range(warmup):
        step()
    images, steps = 0, 0
    t0 = time.perf_counter()
    while steps < min_steps or time.perf_counter() - t0 < seconds:
        images += step()
        steps += 1
    return images / (time.perf_counter() - t0)


def pretrain_throughput(cfg: ViTConfig, seconds: float, seed: int = 0) -> tuple[float, int]:
    p = PretrainParams()
    torch.manual_seed(seed)
    mae = MaskedAutoencoder(ViT(cfg))
    opt = torch.optim.AdamW(mae.parameters(), lr=p.lr, weight_decay=p.weight_decay, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(seed)
    x = synthetic_images(p.batch_size, cfg, g)

    def step() -> int:
        opt.zero_grad()
        loss, _, _ = mae(x, p.mask_ratio, generator=g)
        loss.backward()
        opt.step()
        return len(x)

    return _throughput(step, seconds), p.batch_size


def finetune_throughput(cfg: ViTConfig, seconds: float, seed: int = 0) -> tuple[float, int]:
    p = PeftParams()
    model = edge_model(cfg, seed)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=p.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    x = synthetic_images(p.batch_size, cfg, g)
    y = torch.randint(0, cfg.num_classes, (p.batch_size,), generator=g)

    def step() -> int:  # as ClassifierModule trains: weak view, cross-entropy, AdamW
        opt.zero_grad()
        F.cross_entropy(model(weak(x, g)), y).backward()
        opt.step()
        return len(x)

    return _throughput(step, seconds), p.batch_size


class _BatchClock(L.Callback):
    """Wall time and images from the start of batch ``skip`` to the end of the last batch."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.start: float | None = None
        self.end = 0.0
        self.images = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int
    ) -> None:
        if idx == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if idx >= self.skip:
            self.images += len(batch[0])
            self.end = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.end - self.start if self.start is not None else float("nan")


def _hfsl_fit(cfg: ViTConfig, h: HfslParams, batches: int, skip: int, seed: int) -> _BatchClock:
    """One epoch of ``batches`` client batches (λ = 0.1) through the split chain, in Lightning."""
    g = torch.Generator().manual_seed(seed)
    unlabelled = batches * h.unlabelled_ratio * h.batch_size
    labelled = max(h.batch_size, unlabelled // 9)  # λ = 0.1 of the images, cycled by the sampler
    data = synthetic_split(labelled + unlabelled, labelled, cfg, g)
    chain = one_lane(edge_model(cfg, seed), cfg)
    clock = _BatchClock(skip)
    trainer = make_trainer("cpu", max_epochs=1, callbacks=[clock])
    t = ClientTraining.of(h)
    prior = torch.full((cfg.num_classes,), 1 / cfg.num_classes)
    module = StackedSemiSupervised(chain, t, [seed], [prior], batches)
    trainer.fit(module, DataLoader(StackedBatches([data], t, [seed], batches), batch_size=None))
    return clock


def hfsl_throughput(cfg: ViTConfig, seconds: float, seed: int = 0) -> tuple[float, int]:
    """One client's steps (one lane of StackedSemiSupervised) via a Lightning Trainer: weak no-grad
    pass for the pseudo-labels, then split forward/backward on labelled + strong views (FixMatch:
    the unlabelled loss on, as ecogen-ssl trains; the labels-only default is the same step without
    the unlabelled part).  Images = batch images."""
    h = HfslParams(unlabelled_weight=0.5, local_steps=None)
    skip = 2  # warm-up batches, not timed
    probe = _hfsl_fit(cfg, h, skip + 3, skip, seed)
    per_batch = probe.seconds / 3
    batches = skip + max(3, math.ceil(seconds / per_batch))
    clock = _hfsl_fit(cfg, h, batches, skip, seed)
    return clock.images / clock.seconds, h.batch_size * (1 + h.unlabelled_ratio)


def infer_throughput(cfg: ViTConfig, seconds: float, seed: int = 0) -> tuple[float, int]:
    batch = InferenceParams().batch_size
    chain = one_lane(edge_model(cfg, seed).eval(), cfg)
    x = synthetic_images(batch, cfg, torch.Generator().manual_seed(seed))

    def step() -> int:
        with torch.no_grad():
            chain(x[None], [len(x)])
        return len(x)

    return _throughput(step, seconds), batch


def samples_per_s(cfg: ViTConfig, seconds: float = 3.0, seed: int = 0) -> dict[str, Any]:
    stages = {
        "pretrain": pretrain_throughput,
        "finetune": finetune_throughput,
        "hfsl": hfsl_throughput,
        "infer": infer_throughput,
    }
    out: dict[str, Any] = {"seconds_per_stage": seconds, "batch": {}}
    for name, fn in stages.items():
        rate, batch = fn(cfg, seconds, seed)
        out[name] = rate
        out["batch"][name] = batch
        log.info("samples_per_s: %s %.1f images/s (batch %d)", name, rate, batch)
    return out


# --------------------------------------------------------------------------- bytes per round


def _link_bytes(rnd: dict[str, int], link: str) -> int:
    return sum(v for k, v in rnd.items() if k.startswith(link + "/"))


def bytes_per_round(
    cfg: ViTConfig,
    clusters: int = 6,
    per_cluster: int = 64,
    labelled_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Bytes of one measured HFSL round per method, for one edge with ``clusters`` clusters."""
    edge = edge_model(cfg, seed)
    g = torch.Generator().manual_seed(seed)
    labelled = max(1, round(labelled_fraction * per_cluster))
    data = [synthetic_split(per_cluster, labelled, cfg, g) for _ in range(clusters)]
    # the oracle: one learner with every image and every label
    pooled = synthetic_split(clusters * per_cluster, clusters * per_cluster, cfg, g)
    images = clusters * per_cluster
    rows: dict[str, dict[str, Any]] = {}
    # the settings a method needs beyond the defaults (validated: ecogen/config/params.py)
    needs: dict[str, dict[str, Any]] = {
        "fedprox": {"proximal_mu": 0.01},
        "semifl": {"unlabelled_weight": 1.0, "teacher": "round_start", "fedavg_weights": "trained"},
    }
    for method in method_names():
        h = HfslParams(method=method, clusters=clusters, rounds=1, **needs.get(method, {}))
        strategy = strategy_for(h)
        pooled_method = strategy.pooled  # one learner: one pooled split
        t0 = time.perf_counter()
        outcome = run_hfsl(
            strategy.model(edge),
            [pooled] if pooled_method else data,
            h,
            lambda m: 0.0,  # accuracy is not what is measured here
            "cpu",
            seed=seed,
        )
        (rnd,) = outcome.bytes_per_round
        edge_client, d2d = _link_bytes(rnd, "edge_client"), _link_bytes(rnd, "d2d")
        rows[method] = {
            "edge_client": edge_client,
            "d2d": d2d,
            "cloud_edge": _link_bytes(rnd, "cloud_edge"),
            "total": sum(rnd.values()),
            "d2d_bytes_per_image": d2d / images,
            "by_link_direction": dict(rnd),
        }
        log.info("bytes_per_round: %s %s (%.1f s)", method, rnd, time.perf_counter() - t0)
    full = rows["fedavg_full"]
    for row in rows.values():
        row["edge_client_vs_fedavg_full"] = row["edge_client"] / full["edge_client"]
        row["total_vs_fedavg_full"] = row["total"] / full["total"]
    return {
        "clusters": clusters,
        "images_per_cluster": per_cluster,
        "labelled_fraction": labelled_fraction,
        "rounds_measured": 1,
        "full_model_bytes": module_bytes(strategy_for(HfslParams(method="fedavg_full")).model(edge)),
        "tunable_bytes": state_bytes(tunable_state(edge)),
        "fedavg_full_bytes_per_round": full["edge_client"],
        "methods": rows,
    }


# --------------------------------------------------------------------------- entry point


def _load_avg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on every platform
        return None


def meta(cfg: ViTConfig, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        # other jobs on the machine: with load near cpu_count, multi-threaded timings are unreliable
        "load_avg_1m": _load_avg(),
        "model": asdict(cfg),
        "peft": PeftParams().model_dump(),
        "args": vars(args),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--repeats", type=int, default=30, help="timed repeats of each step (split_step)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps of each path first (split_step)")
    ap.add_argument(
        "--batch", type=int, default=64, help="images per step (split_step); 16 labelled + 48 unlabelled"
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="time per stage (samples_per_s)")
    ap.add_argument("--clusters", type=int, default=6, help="client clusters of the edge (bytes_per_round)")
    ap.add_argument("--per-cluster", type=int, default=64, help="images per cluster (bytes_per_round)")
    ap.add_argument("--labelled-fraction", type=float, default=0.1, help="λ (bytes_per_round)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    ap.add_argument("--tiny", action="store_true", help="tiny 8×8 model, for smoke tests only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = TINY if args.tiny else default_config()
        parts = args.only or list(PARTS)
        result: dict[str, Any] = {"meta": meta(cfg, args)}
        t0 = time.perf_counter()
        if "split_step" in parts:
            result["split_step"] = split_step(cfg, args.repeats, args.batch, args.warmup, args.seed)
        if "samples_per_s" in parts:
            result["samples_per_s"] = samples_per_s(cfg, args.seconds, args.seed)
        if "bytes_per_round" in parts:
            result["bytes_per_round"] = bytes_per_round(
                cfg, args.clusters, args.per_cluster, args.labelled_fraction, args.seed
            )
        result["meta"]["wall_s"] = time.perf_counter() - t0
        result["meta"]["load_avg_1m_end"] = _load_avg()
        return result
    finally:
        torch.set_num_threads(threads)  # callers in the same process (tests) keep their setting


def shared_args(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every benchmark script takes: ``--tiny``, ``--seed``, ``--out``."""
    ap.add_argument("--tiny", action="store_true", help="tiny 8×8 model, for smoke tests only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    return ap


def report(run: Callable[[argparse.Namespace], dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``run(args)`` with progress on stderr and prints its result as JSON on stdout (and
    to ``args.out`` when given)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("ecogen.hfsl").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON only
        result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return report(run, parse_args(argv))


if __name__ == "__main__":
    main()
