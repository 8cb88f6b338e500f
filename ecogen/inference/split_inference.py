"""SL task inference: a request enters at the start client and leaves the end client as a class.

Compute time is measured per device segment; link time comes from a bandwidth/latency model
(``InferenceParams``) applied to the bytes each hop actually carried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import lightning as L
import torch
from torch import Tensor, nn

from ecogen.config.params import InferenceParams
from ecogen.split.channel import Activation, Channel


@dataclass
class InferenceReport:
    correct: int = 0
    total: int = 0
    compute_s: list[float] = field(default_factory=list)  # per device, summed over batches
    hop_bytes: list[int] = field(default_factory=list)  # per hop, summed over batches
    agree_with_unsplit: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.total)


def link_seconds(n_bytes: int, messages: int, cfg: InferenceParams) -> float:
    return n_bytes * 8 / (cfg.d2d_bandwidth_mbps * 1e6) + messages * cfg.d2d_latency_ms / 1e3


class SplitInference(L.LightningModule):
    """Runs the split chain in Lightning's predict loop and fills an :class:`InferenceReport`."""

    def __init__(self, model: nn.Module, segments: list[nn.Module], channel: Channel) -> None:
        super().__init__()
        self.model = model
        self.segments = segments
        self.channel = channel
        self.report = InferenceReport(compute_s=[0.0] * len(segments), hop_bytes=[0] * (len(segments) - 1))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def predict_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        h = x
        for i, segment in enumerate(self.segments):
            if i > 0:
                before = self.channel.ledger.total("d2d")
                h = self.channel.send(Activation(h), "d2d", "forward").tensor
                self.report.hop_bytes[i - 1] += self.channel.ledger.total("d2d") - before
            self._sync()
            t0 = time.perf_counter()
            h = segment(h)
            self._sync()
            self.report.compute_s[i] += time.perf_counter() - t0
        pred = h.argmax(-1)
        self.report.correct += int((pred == y).sum())
        self.report.total += len(y)
        self.report.agree_with_unsplit += int((self.model(x).argmax(-1) == pred).sum())
        return pred
