"""Split learning through one cluster: segment i runs on device i, devices linked in a chain.

Forward: each device runs its segment and sends the activation to the next device over the
channel.  Backward: the end device backpropagates its loss to its own input, sends that gradient
upstream, and each device continues backprop from the gradient it received.  Because the
channel delivers detached copies, no autograd graph spans a link; gradients are only sent to a
device when it, or a device before it, has tunable parameters.

A device may run two neighbouring segments (it stands in for an offline one, see
``hfsl.dropout_policy``): ``crosses[i]`` is False for a boundary inside one device, where the
activation and its gradient are handed on in memory and counted on no link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ecogen.split.channel import Activation, Channel, Gradient


@dataclass
class SplitTrace:
    """What each link saw in one forward pass: (sender's output, receiver's input)."""

    links: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    labels: Tensor | None = None  # as received by the end device


def has_tunable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


class SplitChain:
    def __init__(
        self, segments: list[nn.Module], channel: Channel, crosses: list[bool] | None = None
    ) -> None:
        if len(segments) < 3:
            raise ValueError("a split chain needs ≥3 segments (embedding, blocks, head)")
        self.segments = segments
        self.channel = channel
        # per boundary (after segment i): do its two sides sit on different devices
        self.crosses = crosses if crosses is not None else [True] * (len(segments) - 1)
        if len(self.crosses) != len(segments) - 1:
            raise ValueError(f"{len(segments) - 1} boundaries between segments, not {len(self.crosses)}")
        tunable = [has_tunable(s) for s in segments]
        # device i needs the gradient of its input iff some device before it can learn
        self._grad_in = [any(tunable[:i]) for i in range(len(segments))]

    def forward(
        self, x: Tensor, labels: Tensor | None = None, train: bool = False
    ) -> tuple[Tensor, SplitTrace]:
        """Runs ``x`` (held by the start device) through every device; returns the end's logits."""
        trace = SplitTrace()
        h = self.segments[0](x)
        last = len(self.segments) - 1
        for i in range(1, len(self.segments)):
            if self.crosses[i - 1]:
                msg = self.channel.send(Activation(h, labels), "d2d", "forward")
            else:  # both segments on one device: handed on in memory
                msg = Activation(h.detach(), labels)
            received = msg.tensor
            if train and self._grad_in[i] and torch.is_grad_enabled():
                received.requires_grad_(True)
            trace.links.append((h, received))
            if i == last:
                trace.labels = msg.labels
            h = self.segments[i](received)
        return h, trace

    def backward(self, loss: Tensor, trace: SplitTrace) -> None:
        """Backprop ``loss`` (computed on the end device) device by device towards the start."""
        loss.backward()
        for i, (sent, received) in reversed(list(enumerate(trace.links))):
            if not received.requires_grad or received.grad is None:
                break  # nothing upstream can learn
            grad = received.grad
            if self.crosses[i]:
                grad = self.channel.send(Gradient(grad), "d2d", "backward").tensor
            sent.backward(grad)
