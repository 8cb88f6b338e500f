"""Split learning through clusters of devices: segment i runs on device i, devices linked in a
chain, and many clusters' chains run as one computation (stacked tunable modules, one shared
backbone).

Forward: each device runs its segment and sends the activation to the next device over the
channel.  Backward: the end device backpropagates its loss to its own input, sends that gradient
upstream, and each device continues backprop from the gradient it received.  Because the
channel delivers detached copies, no autograd graph spans a link; gradients are only sent to a
device when it, or a device before it, has tunable parameters.

The chain trains C participants ("lanes") at once — the clusters of every edge, and edges
that join their rounds — when they share a frozen backbone and differ only in their tunable
modules.  Their tunable parameters are stacked along a leading participant axis ("lanes") and
each segment runs once for all of them: on the lanes folded into one batch, the layers whose
weights differ per lane (LoRA's A and B, the head) multiplying lane by lane
(:mod:`ecogen.split.lanes`); a segment whose tunable modules are something else (prompts, the
embedding) runs under ``torch.func.vmap`` of ``functional_call``.

The split boundaries stay explicit.  At every link each lane's activation — its own rows, never
the padding — goes through its edge's :class:`~ecogen.split.channel.Channel`, and on the way back
its gradient does too, so the byte ledgers count exactly what each cluster's own chain would.  A
lane that holds the whole model (the edge's own participant, or an unsplit method) has no
channel: nothing it does crosses a link; a lane whose device stands in for an offline one
(``crosses``, see ``hfsl.dropout_policy``) sends nothing across the boundary inside that device:
the activation and its gradient are handed on in memory.  One lane is one cluster's chain (the
serial driver).

Lanes may have ragged batches (a labelled set that does not divide by the batch size ends an
epoch early): each lane's rows are padded to the longest, and padded rows are neither sent nor
given a loss, so they change no gradient (every op here is per image).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from ecogen.models.vit import Attention, split_segments
from ecogen.peft.edge import base_vit
from ecogen.split.channel import Activation, Channel, Gradient
from ecogen.split.lanes import lane_forwards, lane_layers


@dataclass
class StackedTrace:
    """Per link: the stacked output sent, and each lane's received rows."""

    links: list[tuple[Tensor, list[Tensor]]] = field(default_factory=list)
    labels: list[Tensor | None] = field(default_factory=list)  # per lane, as the end device got them


def pad_stack(rows: list[Tensor], length: int) -> Tensor:
    """``(lanes, length, ...)``: each lane's rows, zero-padded at the end (differentiable)."""
    if all(len(r) == length for r in rows):  # nothing to pad: one copy, not two
        return torch.stack(rows)
    return torch.stack([torch.cat([r, r.new_zeros(length - len(r), *r.shape[1:])]) for r in rows])


def _key(name: str) -> str:
    return name.replace(".", ":")  # a ParameterDict key may not contain dots


class StackedChain(nn.Module):
    """``lanes`` participants over a frozen copy of ``template``, cut at ``block_ranges``."""

    def __init__(
        self,
        template: nn.Module,
        block_ranges: list[tuple[int, int]],
        channels: list[Channel | None],
        names: list[str],
        crosses: list[list[bool] | None] | None = None,
    ) -> None:
        super().__init__()
        self.template = copy.deepcopy(template).requires_grad_(False)
        vit = base_vit(self.template)
        self.segments = split_segments(vit, block_ranges)
        self.channels = channels
        self.names = names
        # per lane, per boundary: do its two sides sit on different devices
        every = [True] * (len(self.segments) - 1)
        self.crosses = [every if x is None else x for x in (crosses or [None] * len(channels))]
        params = dict(template.named_parameters())
        lanes = len(channels)
        self.stack = nn.ParameterDict(
            {
                _key(n): nn.Parameter(
                    params[n].detach().unsqueeze(0).repeat(lanes, *[1] * params[n].dim()),
                    requires_grad=params[n].requires_grad,
                )
                for n in names
            }
        )
        full = {id(p): n for n, p in self.template.named_parameters()}
        wanted = set(names)
        # per segment: its own parameter name → the full model's, for the stacked ones
        self.local = [
            {ln: full[id(p)] for ln, p in seg.named_parameters() if full[id(p)] in wanted}
            for seg in self.segments
        ]
        tunable = [any(params[n].requires_grad for n in loc.values()) for loc in self.local]
        self._grad_in = [any(tunable[:i]) for i in range(len(self.segments))]
        # per segment: the lane-aware layers it runs with, or None where it runs under vmap
        self.lane_layers = [
            lane_layers(seg, list(loc)) for seg, loc in zip(self.segments, self.local, strict=True)
        ]
        for seg, layers in zip(self.segments, self.lane_layers, strict=True):
            if layers is None:
                for attention in (m for m in seg.modules() if isinstance(m, Attention)):
                    attention.written_out = True  # the fused kernel has no vmap batching rule on CPU

    @property
    def lanes(self) -> int:
        return len(self.channels)

    def stacked(self) -> dict[str, Tensor]:
        """Full parameter name → its stacked tensor ``(lanes, ...)``."""
        return {n: self.stack[_key(n)] for n in self.names}

    @torch.no_grad()
    def load(self, lane: int, state: dict[str, Tensor]) -> None:
        for n in self.names:
            self.stack[_key(n)][lane].copy_(state[n])

    def state(self, lane: int) -> dict[str, Tensor]:
        """A detached copy of one lane's stacked parameters."""
        return {n: self.stack[_key(n)][lane].detach().clone() for n in self.names}

    def _segment(self, i: int, h: Tensor, params: dict[str, Tensor]) -> Tensor:
        seg, local = self.segments[i], self.local[i]
        if not local:  # nothing differs between lanes: one batch of every lane's rows
            return seg(h.flatten(0, 1)).unflatten(0, h.shape[:2])
        mine = {ln: params[n] for ln, n in local.items()}
        if (layers := self.lane_layers[i]) is not None:
            with lane_forwards(seg, layers, mine, h.shape[0]):
                return seg(h.flatten(0, 1)).unflatten(0, h.shape[:2])
        return vmap(lambda p, x: functional_call(seg, p, (x,)), randomness="different")(mine, h)

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        counts: list[int],
        labels: list[Tensor | None] | None = None,
        train: bool = False,
        params: dict[str, Tensor] | None = None,
        tokens: Tensor | None = None,
        end: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[Tensor, StackedTrace]:
        """``x``: (lanes, rows, ...) with ``counts[c]`` real rows in lane c.  ``params``: other
        stacked modules to run with (a teacher's), default this chain's own.  ``tokens``
        (lanes, rows, kept): the tokens the start device sends on, picked from its segment's output
        before the first link (MAE's class token and visible patches); None: all of them.  ``end``:
        what the end device runs instead of its segment, the same frozen module for every lane, on
        the lanes' rows as one batch (the FM's MAE decoder side); None: its segment."""
        params = params if params is not None else self.stacked()
        labels = labels if labels is not None else [None] * self.lanes
        trace = StackedTrace(labels=list(labels))
        width = x.shape[1]
        h = self._segment(0, x, params)
        if tokens is not None:  # (lanes, rows, T, dim) → (lanes, rows, kept, dim), on the start device
            h = torch.gather(h, 2, tokens[..., None].expand(-1, -1, -1, h.shape[-1]))
        last = len(self.segments) - 1
        for i in range(1, last + 1):
            received = self._link(i, h, counts, labels, train, trace)
            trace.links.append((h, received))
            h = pad_stack(received, width)
            if i == last and end is not None:
                h = end(h.flatten(0, 1)).unflatten(0, h.shape[:2])
            else:
                h = self._segment(i, h, params)
        return h, trace

    def _link(
        self,
        i: int,
        h: Tensor,
        counts: list[int],
        labels: list[Tensor | None],
        train: bool,
        trace: StackedTrace,
    ) -> list[Tensor]:
        """Each lane's real rows of ``h`` across link ``i`` (into segment ``i``), as received."""
        received = []
        for c, channel in enumerate(self.channels):
            rows = h[c, : counts[c]]
            if channel is None or not counts[c] or not self.crosses[c][i - 1]:
                r = rows.detach()  # nothing held elsewhere, nothing to send, or one device
            else:
                msg = channel.send(Activation(rows, labels[c]), "d2d", "forward")
                r = msg.tensor
                if i == len(self.segments) - 1:
                    trace.labels[c] = msg.labels
            if train and self._grad_in[i] and torch.is_grad_enabled():
                r.requires_grad_(True)
            received.append(r)
        return received

    def backward(self, loss: Tensor, *traces: StackedTrace) -> None:
        """Backprop ``loss`` (the lanes' end-device losses, summed) link by link to the start, through
        every forward pass (``traces``) the loss was computed from."""
        loss.backward()
        for trace in traces:
            self._links_backward(trace)

    def _links_backward(self, trace: StackedTrace) -> None:
        for i, (sent, received) in reversed(list(enumerate(trace.links))):
            if not any(r.requires_grad and r.grad is not None for r in received):
                break  # nothing upstream can learn
            grads = []
            for c, (r, channel) in enumerate(zip(received, self.channels, strict=True)):
                g = r.grad if r.grad is not None else torch.zeros_like(r)
                if channel is not None and len(r) and self.crosses[c][i]:
                    g = channel.send(Gradient(g), "d2d", "backward").tensor
                grads.append(g)
            sent.backward(pad_stack(grads, sent.shape[1]))
