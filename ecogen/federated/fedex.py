"""FedEx-LoRA at an edge: each round's residual folded into the frozen weights of its LoRA layers,
and sent to the participants that need it (``hfsl.lora_aggregation: fedex``).

FedEx-LoRA (Singhal et al., 2024, arXiv 2410.09432) averages LoRA's A and B on their own, as
``separate`` does, and adds what that average misses, s·(Σ_k w_k·B_k·A_k − B̄·Ā)
(:func:`~ecogen.federated.aggregate.lora_residual`), to the frozen weight W₀ of each LoRA layer:
the edge's model, W₀' + s·B̄·Ā, is then exactly the FedAvg of its participants' W₀ + s·B_k·A_k.

The frozen weights change, so they travel.  At each delivery (:meth:`BaseLog.sync`) a participant
one round behind the edge receives, for each of its devices and each LoRA layer the device holds,
the round's residual as its factors (K·r·(in + out) numbers for K uploads aggregated) or, where
that is smaller, the layer's new weight; a participant further behind (offline in a round, or
drawn afresh under ``clusters_per_round``) receives the layers' weights as the edge holds them.
All of it crosses the edge↔client link as :class:`~ecogen.split.channel.BaseCorrection`.  A
participant adds exactly the numbers the edge added, so its frozen weights equal the edge's bit
for bit: an edge's participants still share one backbone (the batched driver stacks them), while
different edges' differ and train as separate groups.  The edge's own participant copies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft.tuners.lora import LoraLayer
from torch import Tensor, nn

from ecogen.federated.aggregate import LORA_A
from ecogen.peft.edge import LORA_BASE as BASE
from ecogen.split.channel import BaseCorrection, Channel

U, V = ".residual_U", ".residual_V"  # a residual's factors in a BaseCorrection, after the layer's name


def lora_scalings(model: nn.Module) -> dict[str, float]:
    """LoRA's scaling (α/r) of every LoRA layer of ``model``, by the layer's name."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            (scaling,) = module.scaling.values()  # one adapter per layer
            out[name] = float(scaling)
    return out


def base_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The frozen weight of every LoRA layer of ``model``, by the layer's name."""
    return {n[: -len(BASE)]: p for n, p in model.named_parameters() if n.endswith(BASE)}


def copy_bases(model: nn.Module) -> dict[str, Tensor]:
    """A copy of :func:`base_weights` (for a checkpoint)."""
    return {layer: p.detach().clone() for layer, p in base_weights(model).items()}


def put_bases(model: nn.Module, weights: dict[str, Tensor]) -> None:
    """``model``'s LoRA layers take ``weights`` (from :func:`copy_bases`) as their frozen weights."""
    mine = base_weights(model)
    with torch.no_grad():
        for layer, w in weights.items():
            mine[layer].copy_(w)


@dataclass
class BaseLog:
    """What an edge folded into its frozen weights: how many residuals, and the last one."""

    version: int = 0  # residuals folded in so far
    factors: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)  # the last: (U, V) by layer
    # the last residual as the edge added it (U·V), computed once so that every holder of the
    # weights adds the same numbers
    change: dict[str, Tensor] = field(default_factory=dict)

    def fold(self, model: nn.Module, residual: dict[str, tuple[Tensor, Tensor]]) -> None:
        """The edge adds a round's ``residual`` (layer → (U, V)) to ``model``'s frozen weights."""
        self.factors = residual
        self.change = {layer: u @ v for layer, (u, v) in residual.items()}
        weights = base_weights(model)
        with torch.no_grad():
            for layer, delta in self.change.items():
                weights[layer].add_(delta)
        self.version += 1

    def sync(
        self,
        model: nn.Module,
        devices: list[list[str]] | None,
        version: int,
        edge: nn.Module,
        channel: Channel,
    ) -> int:
        """Brings a participant's frozen weights (its ``model``, at ``version``) to the ``edge``'s;
        ``devices``: the tunable names each of its devices holds (None: it is the edge's own
        participant, beside the edge).  Returns its version now."""
        if version == self.version:
            return version
        held, mine = base_weights(edge), base_weights(model)
        with torch.no_grad():
            if devices is None:  # the edge's own participant, beside the edge: no link
                for layer, w in held.items():
                    mine[layer].copy_(w)
                return self.version
            for keys in devices:
                if not (layers := _layers(keys)):
                    continue
                message = BaseCorrection(self._message(layers, held, version))
                sent = channel.send(message, "edge_client", "down").state
                for layer in layers:
                    if (weight := sent.get(f"{layer}{BASE}")) is not None:
                        mine[layer].copy_(weight)
                    else:  # the factors arrived: the device adds their product, as the edge did
                        mine[layer].add_(self.change[layer])
        return self.version

    def _message(self, layers: list[str], held: dict[str, nn.Parameter], version: int) -> dict[str, Tensor]:
        """One device's correction: per layer the last residual's factors where the device is one
        round behind and they are smaller than the layer's weight, else the weight itself."""
        out: dict[str, Tensor] = {}
        for layer in layers:
            u, v = self.factors[layer]
            if version == self.version - 1 and u.numel() + v.numel() < held[layer].numel():
                out[f"{layer}{U}"], out[f"{layer}{V}"] = u, v
            else:
                out[f"{layer}{BASE}"] = held[layer].detach()
        return out


def _layers(keys: list[str]) -> list[str]:
    """The LoRA layers among a device's tunable names."""
    return [k.split(LORA_A)[0] for k in keys if LORA_A in k]
