"""FedEx-LoRA in a round: the edge's model is the exact FedAvg of its participants' models, and the
residual reaches every participant's frozen weights, bit for bit, counted on the edge↔client link."""

from __future__ import annotations

import pytest
import torch
from federated_support import CFG, cluster

from ecogen.config.params import HfslParams, Params, PeftParams
from ecogen.federated.drivers import DRIVERS
from ecogen.federated.fedex import base_weights, lora_scalings
from ecogen.federated.roles import EdgeServer
from ecogen.federated.strategies import strategy_for
from ecogen.federated.strategies.base import clients_of, trained_examples
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.split import Channel


def _effective(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """W₀ + s·B·A of every LoRA layer of ``model``."""
    params = dict(model.named_parameters())
    return {
        layer: w.detach()
        + s * params[f"{layer}.lora_B.default.weight"] @ params[f"{layer}.lora_A.default.weight"]
        for (layer, w), s in zip(base_weights(model).items(), lora_scalings(model).values(), strict=True)
    }


def _edge(rule: str, clusters: int = 3) -> tuple[EdgeServer, HfslParams]:
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    cfg = HfslParams(
        clusters=clusters, batch_size=4, local_steps=3, lr=0.05, unlabelled_weight=0.0, lora_aggregation=rule
    )
    strategy = strategy_for(cfg)
    data = [cluster(s, labelled=8 + 4 * s) for s in range(1, clusters + 1)]
    own = cluster(9, labelled=16)
    edge = EdgeServer("e", model, clients_of(model, data, own, strategy), lambda m: 0.0, 0, Channel())
    return edge, cfg


def _round(edge: EdgeServer, cfg: HfslParams, r: int) -> list[dict[str, torch.Tensor]]:
    """One round at ``edge``: delivery, local training, aggregation; each participant's W₀ + s·B·A
    as it uploaded."""
    strategy = strategy_for(cfg)
    edge.channel.ledger.reset()
    edge.broadcast()
    tasks = [(edge, k, c) for k, c in enumerate(edge.clients) if edge.takes_part(k)]
    DRIVERS["serial"](tasks, strategy, "cpu", r, 1)
    trained = [_effective(c.model) for c in edge.clients]
    strategy.aggregate([edge], r)
    return trained


@pytest.mark.parametrize("rule", ["fedex", "separate"])
def test_fedex_makes_the_edge_the_exact_average_of_its_participants(rule: str) -> None:
    edge, cfg = _edge(rule)
    for r in range(2):  # the second round starts from corrected frozen weights
        trained = _round(edge, cfg, r)
        n = [trained_examples(c.data, cfg) for c in edge.clients]
        want = {k: sum(w * t[k] for w, t in zip(n, trained, strict=True)) / sum(n) for k in trained[0]}
        got = _effective(edge.model)
        gap = max((got[k] - want[k]).abs().max().item() for k in want)
        if rule == "fedex":
            assert gap <= 1e-6, f"round {r + 1}: the edge misses the average by {gap}"
        else:
            assert gap > 1e-5  # averaging A and B on their own misses it


def _factor_bytes(weights: dict[str, torch.Tensor], uploads: int) -> int:
    """One participant's residual factors over every LoRA layer: K·r·(in + out) floats, r = 2."""
    return sum(uploads * 2 * sum(w.shape) * 4 for w in weights.values())


def test_the_residual_travels_to_every_participant_and_is_counted() -> None:
    edge, cfg = _edge("fedex")
    _round(edge, cfg, 0)
    assert edge.bases is not None and edge.bases.version == 1
    modules = edge.channel.ledger.bytes[("edge_client", "down")]  # round 1: the modules alone
    weights = base_weights(edge.model)
    dense = sum(w.numel() * 4 for w in weights.values())
    assert _factor_bytes(weights, 4) < dense  # 3 clusters + the edge uploaded: factors are smaller
    edge.present = [False, True, True, True]  # cluster 0 offline in round 2: it receives nothing
    _round(edge, cfg, 1)
    assert edge.bases.version == 2
    factors = _factor_bytes(weights, 4)
    assert edge.channel.ledger.bytes[("edge_client", "down")] == modules * 2 // 3 + 2 * factors
    assert edge.clients[0].base_version == 0 and edge.clients[1].base_version == 1
    edge.present = []
    edge.channel.ledger.reset()
    edge.broadcast()
    # cluster 0, two residuals behind, gets the layers' weights; the others round 2's residual's
    # factors (3 uploads: cluster 0 was away)
    assert edge.channel.ledger.bytes[("edge_client", "down")] == modules + dense + 2 * _factor_bytes(
        weights, 3
    )
    for c in edge.clients:  # clusters and the edge's own participant hold the edge's weights
        assert all(torch.equal(w, weights[k]) for k, w in base_weights(c.model).items())
        assert c.base_version == 2


def test_fedex_is_refused_where_it_cannot_be_exact() -> None:
    with pytest.raises(ValueError, match="aggregation fedavg"):
        HfslParams(lora_aggregation="fedex", aggregation="median")
    with pytest.raises(ValueError, match="aggregation fedavg"):
        HfslParams(lora_aggregation="fedex", server_optimizer="fedadam")
    with pytest.raises(ValueError, match="cloud_every"):
        HfslParams(lora_aggregation="fedex", cloud_every=2)
    with pytest.raises(ValueError, match="dp_epsilon null"):
        HfslParams(lora_aggregation="fedex", dp_epsilon=8.0)
    with pytest.raises(ValueError, match="method fedavg_full"):
        HfslParams(lora_aggregation="fedex", method="fedavg_full")
    with pytest.raises(ValueError, match="peft.method is prompt"):
        Params.model_validate({"peft": {"method": "prompt"}, "hfsl": {"lora_aggregation": "fedex"}})
