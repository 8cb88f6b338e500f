"""The job both frameworks run: FedAvg of LoRA modules + head, no pre-training, labels only.

Fashion-MNIST; 6 IID clients × 2,000 labelled images (seed 0); a ViT of dim 64, depth 4, 4 heads,
patch 4, MLP 256; LoRA r = 8 (α 16) on the attention output and both MLP layers, plus a trainable
head; 5 rounds of 1 local epoch at batch 64, AdamW 3e-3 fresh each round; one torch thread per
client; evaluation on the 10,000 test images after every round.

Both sides train a client with the same code — EcoGen's
:class:`~ecogen.federated.roles.ClusterClient` (one device, the whole model) — so what differs is
only the framework around it: how clients are scheduled, how modules travel, how much memory it
takes.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ecogen.config.params import HfslParams, PeftParams
from ecogen.data.prepared import Split
from ecogen.data.sources.fashion_mnist import load_fashion_mnist
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model

CLIENTS, PER_CLIENT, ROUNDS, SEED = 6, 2000, 5, 0
# both sides evaluate at params.yaml's inference batch: evaluate() on the 10,000 test images took
# 2.0 s at 256 against 3.1 s at 1,024 on 2 cores (larger batches spill the cache; ceiling.py's
# inference rates show the same)
EVAL_BATCH = 256
VIT = ViTConfig(
    image_size=28, channels=1, patch_size=4, dim=64, depth=4, heads=4, mlp_ratio=4.0, head_hidden=0
)
PEFT = PeftParams(method="lora", lora_rank=8, lora_alpha=16, target_modules=["proj", "fc1", "fc2"])
HFSL = HfslParams(
    method="fedavg_peft",
    clusters=CLIENTS,
    rounds=ROUNDS,
    local_epochs=1,
    local_steps=None,
    batch_size=64,
    optimizer="adamw",
    lr=3e-3,
    lr_schedule="constant",
    unlabelled_weight=0.0,
    augment="none",
    edge_joins=False,
    # On this job (6 unsplit clients, batch 64, 2 CPU cores) the serial driver was the faster:
    # 14.4 s a round against 17.8 for batched (2026-11-30); batched wins on the split, batch-16
    # rounds of the experiments (benchmarks/drivers.py)
    driver="serial",
)


def client_data(root: str | None = None) -> tuple[list[Split], Split]:
    """The 6 IID client shards (2,000 labelled train images each, seed 0) and the 10,000 test images."""
    src = load_fashion_mnist(root)
    order = torch.randperm(len(src.train), generator=torch.Generator().manual_seed(SEED))
    shards = [order[k * PER_CLIENT : (k + 1) * PER_CLIENT] for k in range(CLIENTS)]
    return [Split(src.train.x[i], src.train.y[i]) for i in shards], Split(src.test.x, src.test.y)


def initial_model() -> nn.Module:
    """The same randomly initialised ViT + LoRA + head on both sides (seeded)."""
    torch.manual_seed(SEED)
    return build_edge_model(MaskedAutoencoder(ViT(VIT)), PEFT, SEED)


def state_bytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


@dataclass
class RssSampler:
    """Peak resident memory of this process and every process below it (Ray's workers too), read
    from /proc every ``every`` seconds in a thread."""

    every: float = 0.2
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _tree_rss(self) -> int:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        total, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.peak = max(self.peak, self._tree_rss())


def summary(
    name: str, round_ends: list[float], accuracy: list[float], bytes_per_round: list[int], rss: int
) -> dict:
    """s/round as the median of rounds 2–5 (round 1 pays for start-up), and the rest as measured."""
    rounds = [b - a for a, b in zip(round_ends, round_ends[1:], strict=False)]
    return {
        "framework": name,
        "s_per_round_median_2_5": statistics.median(rounds[1:] or rounds),
        "s_per_round": rounds,
        "peak_rss_bytes": rss,
        "accuracy_per_round": accuracy,
        "bytes_per_round": bytes_per_round,
    }
