"""Pre-training through EcoGen's stage code against a bare torch loop, at the same batch.

Prints one JSON object on stdout (progress on stderr)::

    python -m benchmarks.pretrain                                # CPU, params.yaml's batch
    python -m benchmarks.pretrain --accelerator cuda --batch 1024    # on a GPU

``ecogen``: :class:`~ecogen.training.mae.MAEModule` trained by a Lightning ``Trainer`` from
:func:`~ecogen.training.resident.index_loader`, exactly as the pretrain stage builds them
(precision from ``--precision`` as the stage resolves it, fused AdamW on CUDA, optional
``--compile``).  ``bare``: the same masked autoencoder, optimiser and batch in a plain loop over
the same resident tensor (autocast when the stage's precision is bf16).  Images per second of
each after ``--warmup`` steps, and ``ecogen_vs_bare`` (≥ 1/1.5 is the GPU target).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from benchmarks.bench import TINY, default_config, meta, report, shared_args, synthetic_images
from ecogen.config.params import PretrainParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.training.mae import MAEModule
from ecogen.training.resident import device_for, index_loader
from ecogen.training.trainer import make_trainer, trainer_precision


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Clock(L.Callback):
    def __init__(self, skip: int, device: torch.device) -> None:
        self.skip, self.device = skip, device
        self.start = self.end = 0.0
        self.images = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int
    ) -> None:
        if idx == self.skip:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if idx >= self.skip:
            self.images += len(batch[0])
            _sync(self.device)
            self.end = time.perf_counter()


def ecogen_rate(cfg: ViTConfig, args: argparse.Namespace, x: torch.Tensor) -> float:
    p = PretrainParams()
    torch.manual_seed(args.seed)
    module = MAEModule(
        MaskedAutoencoder(ViT(cfg)), p.lr, p.weight_decay, p.mask_ratio, args.seed, compile=args.compile
    )
    loader = index_loader((x,), args.batch, True, args.seed, args.accelerator, drop_last=True)
    clock = _Clock(args.warmup, device_for(args.accelerator))
    precision = trainer_precision(args.precision, args.accelerator)
    make_trainer(args.accelerator, 1, [clock], precision=precision).fit(module, loader)
    return clock.images / (clock.end - clock.start)


def bare_rate(cfg: ViTConfig, args: argparse.Namespace, x: torch.Tensor) -> float:
    p = PretrainParams()
    device = device_for(args.accelerator)
    torch.manual_seed(args.seed)
    mae = MaskedAutoencoder(ViT(cfg)).to(device)
    opt = torch.optim.AdamW(
        mae.parameters(),
        lr=p.lr,
        weight_decay=p.weight_decay,
        betas=(0.9, 0.95),
        fused=device.type == "cuda" or None,
    )
    bf16 = trainer_precision(args.precision, args.accelerator) == "bf16-mixed"
    forward = torch.compile(mae.forward) if args.compile else mae.forward
    data = x.to(device)
    g = torch.Generator(device=device).manual_seed(args.seed)
    steps = len(data) // args.batch
    start = 0.0
    for i in range(steps):
        if i == args.warmup:
            _sync(device)
            start = time.perf_counter()
        batch = data[torch.randint(0, len(data), (args.batch,), device=device, generator=g)]
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss, _, _ = forward(batch, p.mask_ratio, noise=mae.noise(batch, g))
        loss.backward()
        opt.step()
    _sync(device)
    return (steps - args.warmup) * args.batch / (time.perf_counter() - start)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accelerator", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--batch", type=int, default=PretrainParams().batch_size)
    ap.add_argument("--steps", type=int, default=40, help="steps of each, warm-up included")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--precision", default="auto", choices=["auto", "32", "bf16-mixed"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the MAE forward (both sides)")
    return shared_args(ap).parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = TINY if args.tiny else default_config()
    result: dict[str, Any] = {"meta": meta(cfg, args)}
    x = synthetic_images(args.batch * args.steps, cfg, torch.Generator().manual_seed(args.seed))
    rates = {"ecogen": ecogen_rate(cfg, args, x), "bare": bare_rate(cfg, args, x)}
    result["pretrain"] = {
        "images_per_s": rates,
        "ecogen_vs_bare": rates["ecogen"] / rates["bare"],
        "batch": args.batch,
        "precision": trainer_precision(args.precision, args.accelerator),
        "device": str(device_for(args.accelerator)),
    }
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return report(run, parse_args(argv))


if __name__ == "__main__":
    main()
