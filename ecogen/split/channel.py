"""The one place where anything crosses a link, and the ledger that counts every byte.

A link carries six kinds of payload and nothing else: activations (forward, with the labels the
end device needs to compute its loss), activation gradients (backward), tunable-module tensors,
an edge's style prototypes (class means of FM features, for the relay's routing), the frozen
weights of one segment handed to a device that stands in for an offline one, and corrections of
the frozen weights of LoRA layers (FedEx-LoRA's residuals, ``ecogen.federated.fedex``).  Raw
inputs, whole models or arbitrary objects are refused.  Bytes are
``numel × element_size`` of every tensor sent, counted per link class and direction.

The default transport is in-process: the receiver gets a detached copy, so no autograd graph
ever spans a link.  A multi-process transport can plug in behind :class:`Transport`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from torch import Tensor

LinkClass = Literal["cloud_edge", "edge_client", "d2d"]
Direction = Literal["down", "up", "forward", "backward"]


@dataclass(frozen=True)
class Activation:
    tensor: Tensor  # (B, T, dim) tokens between segments
    labels: Tensor | None = None  # (B,) int64; travels with the activation to the end device


@dataclass(frozen=True)
class Gradient:
    tensor: Tensor  # dLoss/d(activation), same shape as the activation it answers


@dataclass(frozen=True)
class TunableModules:
    state: dict[str, Tensor]  # only requires_grad parameters of one segment or model


@dataclass(frozen=True)
class StylePrototypes:
    tensor: Tensor  # (classes, features): an edge's class-mean FM token features, no image


@dataclass(frozen=True)
class SegmentWeights:
    state: dict[str, Tensor]  # one segment's frozen parameters and buffers, for a stand-in device


@dataclass(frozen=True)
class BaseCorrection:
    # frozen weights of LoRA layers, changed by FedEx-LoRA: per layer its residual's factors, its
    # new weight, or its change against the FM (ecogen.federated.fedex, ecogen.peft.edge)
    state: dict[str, Tensor]


Payload = Activation | Gradient | TunableModules | StylePrototypes | SegmentWeights | BaseCorrection
P = TypeVar("P", Activation, Gradient, TunableModules, StylePrototypes, SegmentWeights, BaseCorrection)
PAYLOADS = (Activation, Gradient, TunableModules, StylePrototypes, SegmentWeights, BaseCorrection)
_STATES = (TunableModules, SegmentWeights, BaseCorrection)


def payload_bytes(payload: Payload) -> int:
    if isinstance(payload, _STATES):
        tensors = list(payload.state.values())
    elif isinstance(payload, Activation):
        tensors = [payload.tensor] + ([payload.labels] if payload.labels is not None else [])
    else:
        tensors = [payload.tensor]
    return sum(t.numel() * t.element_size() for t in tensors)


class Transport(Protocol):
    def deliver(self, payload: P) -> P: ...


def _copy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


class InProcessTransport:
    """Hands the receiver a detached copy: the sender's graph stays on the sender's side."""

    def deliver(self, payload: P) -> P:
        if isinstance(payload, TunableModules):
            return TunableModules(_copy(payload.state))  # type: ignore[return-value]
        if isinstance(payload, SegmentWeights):
            return SegmentWeights(_copy(payload.state))  # type: ignore[return-value]
        if isinstance(payload, BaseCorrection):
            return BaseCorrection(_copy(payload.state))  # type: ignore[return-value]
        if isinstance(payload, Activation):
            labels = None if payload.labels is None else payload.labels.detach().clone()
            return Activation(payload.tensor.detach().clone(), labels)  # type: ignore[return-value]
        return type(payload)(payload.tensor.detach().clone())  # type: ignore[return-value]


@dataclass
class ByteLedger:
    bytes: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    messages: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # clusters send in parallel

    def record(self, link: str, direction: str, n: int) -> None:
        with self.lock:
            self.bytes[(link, direction)] += n
            self.messages[(link, direction)] += 1

    def total(self, link: str | None = None) -> int:
        return sum(v for (lk, _), v in self.bytes.items() if link is None or lk == link)

    def by_link(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for (link, _), v in self.bytes.items():
            out[link] += v
        return dict(out)

    def snapshot(self) -> dict[str, int]:
        """``{"d2d/forward": 123, ...}`` — flat, for logging."""
        return {f"{lk}/{d}": v for (lk, d), v in sorted(self.bytes.items())}

    def reset(self) -> None:
        self.bytes.clear()
        self.messages.clear()


class Channel:
    def __init__(self, ledger: ByteLedger | None = None, transport: Transport | None = None) -> None:
        self.ledger = ledger if ledger is not None else ByteLedger()
        self.transport: Transport = transport if transport is not None else InProcessTransport()

    def send(self, payload: P, link: LinkClass, direction: Direction) -> P:
        if not isinstance(payload, PAYLOADS):
            raise TypeError(
                f"refusing to send {type(payload).__name__} over {link}: only Activation, "
                "Gradient, TunableModules, StylePrototypes, SegmentWeights or BaseCorrection may cross a link"
            )
        if isinstance(payload, _STATES) and not all(isinstance(v, Tensor) for v in payload.state.values()):
            raise TypeError(f"{type(payload).__name__} must map names to tensors")
        self.ledger.record(link, direction, payload_bytes(payload))
        return self.transport.deliver(payload)
