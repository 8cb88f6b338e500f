"""How fast can any framework run the peer job on this machine?  A floor under its s/round.

A round of the job trains 6 × 2,000 images (one epoch each, batch 64) and evaluates the 10,000
test images.  Whatever schedules it — Flower, EcoGen, a hand-written loop — it cannot go faster
than the fastest training and inference this machine's torch can do on the job's model.  This
script measures that ceiling with bare torch (no Lightning, no framework, real job data):

* training images/s of one step (forward, cross-entropy, backward, AdamW on the LoRA modules and
  head) in every layout a framework could choose: one thread at the clients' batch, eager and
  ``torch.compile``-d, then doubled as if every core ran a client with no interference (an
  optimistic bound); all threads on the six clients' batches stacked as one (384 images: the
  best case for stacking clients, one shared set of adapters, no per-client matmuls); and
  ``torch.compile`` with bf16 autocast (this CPU has AMX);
* inference images/s of the merged model (``for_inference``), all threads: eager at several batch
  sizes, compiled, and compiled with bf16 autocast.

``floor_s_per_round`` = training images ÷ the best training rate + test images ÷ the best
inference rate: no aggregation, no data loading, no messages.  ``vs_flower`` divides it by
Flower's s/round (``--flower``, default the issue's 13.1 s measured with flwr 1.42 on 2 cores):
a framework can reach "≤ 0.5× Flower" here only if this is at most 0.5.  Prints one JSON object.

    python -m benchmarks.peers.ceiling                # ~2 min on 2 cores
    python -m benchmarks.peers.ceiling --flower 15.7  # Flower's s/round from a run of run.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.peers.job import CLIENTS, HFSL, PER_CLIENT, client_data, initial_model
from ecogen.data.prepared import to_float
from ecogen.peft.inference import for_inference

STEP = Callable[[Tensor, Tensor], None]


def _rate(run: Callable[[], None], images: int, seconds: float) -> float:
    """Images per second of ``run`` (``images`` each call), timed for about ``seconds`` after
    three untimed calls (compilation, allocator warm-up)."""
    for _ in range(3):
        run()
    calls, start = 0, time.perf_counter()
    while True:
        run()
        calls += 1
        spent = time.perf_counter() - start
        if spent >= seconds and calls >= 5:
            return calls * images / spent


def _train_step(model: nn.Module, compiled: bool, bf16: bool) -> STEP:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=HFSL.lr)

    def forward(x: Tensor) -> Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    torch._dynamo.reset()  # a fresh compile for this layout's one shape, not a dynamic-shape recompile
    fwd = torch.compile(forward, dynamic=False) if compiled else forward

    def step(x: Tensor, y: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(fwd(x).float(), y).backward()
        opt.step()

    return step


def training(x: Tensor, y: Tensor, seconds: float) -> dict[str, float]:
    cores = torch.get_num_threads()
    out: dict[str, float] = {}
    batch = HFSL.batch_size
    layouts = [
        ("eager_1_thread_batch_64", 1, batch, False, False),
        ("compiled_1_thread_batch_64", 1, batch, True, False),
        ("compiled_bf16_1_thread_batch_64", 1, batch, True, True),
        (f"eager_{cores}_threads_batch_{CLIENTS * batch}", cores, CLIENTS * batch, False, False),
        (f"compiled_{cores}_threads_batch_{CLIENTS * batch}", cores, CLIENTS * batch, True, False),
    ]
    try:
        for name, threads, rows, compiled, bf16 in layouts:
            torch.set_num_threads(threads)
            step = _train_step(initial_model(), compiled, bf16)
            xs, ys = x[:rows], y[:rows]
            rate = _rate(lambda: step(xs, ys), rows, seconds)  # noqa: B023 (called before the next loop)
            out[name] = rate
            if threads == 1:  # every core a client, no interference: an upper bound
                out[name.replace("1_thread", f"{cores}_clients_at_once_bound")] = cores * rate
            print(f"train {name}: {rate:.0f} images/s", file=sys.stderr)
    finally:
        torch.set_num_threads(cores)
    return out


@torch.inference_mode()
def inference(x: Tensor, seconds: float) -> dict[str, float]:
    merged = for_inference(initial_model()).eval()
    out = {}
    for name, compile_it, batch, bf16 in [
        *[(f"eager_batch_{b}", False, b, False) for b in (32, 64, 256, 1024)],
        *[(f"compiled_batch_{b}", True, b, False) for b in (64, 256)],
        ("compiled_bf16_batch_256", True, 256, True),
    ]:
        torch._dynamo.reset()  # each compiled layout compiles its own shape
        model = torch.compile(merged, dynamic=False) if compile_it else merged
        xs = x[:batch]

        def run() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # noqa: B023
                model(xs)  # noqa: B023

        out[name] = _rate(run, batch, seconds)
        print(f"infer {name}: {out[name]:.0f} images/s", file=sys.stderr)
    return out


def floor_s(train: dict[str, float], infer: dict[str, float], train_images: int, test_images: int) -> float:
    """Seconds a round takes at least: its training images at the best training rate, its test
    images at the best inference rate."""
    return train_images / max(train.values()) + test_images / max(infer.values())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="time each layout for about this long")
    ap.add_argument("--flower", type=float, default=13.1, help="Flower's s/round to compare with")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    shards, test = client_data()
    x, y = to_float(shards[0].x), shards[0].y
    train = training(x, y, args.seconds)
    infer = inference(to_float(test.x), args.seconds)
    train_images, test_images = CLIENTS * PER_CLIENT, len(test.y)
    floor = floor_s(train, infer, train_images, test_images)
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "train_images_per_s": train,
        "inference_images_per_s": infer,
        "train_images_per_round": train_images,
        "test_images_per_round": test_images,
        "floor_s_per_round": floor,
        "flower_s_per_round": args.flower,
        "vs_flower": floor / args.flower,
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=1)
    print()
