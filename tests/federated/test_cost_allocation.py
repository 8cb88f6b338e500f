"""A cost-aware allocation (hfsl.allocation latency) through real HFSL rounds: the chain is cut
where the cost model says, and it trains to the same modules as under balanced."""

from __future__ import annotations

import dataclasses

import torch
from federated_support import CFG, cluster

from ecogen.config.params import Params, PeftParams
from ecogen.costs.round import block_costs, block_ranges
from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges
from ecogen.federated.strategies import strategy_for
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import tunable_state
from ecogen.split import Channel

DEEP = dataclasses.replace(CFG, depth=4)
CHAIN = ["phone", "weak", "phone", "board", "phone"]  # balanced would give the weak device 2 blocks


def _train(rule: str) -> tuple[list[tuple[int, int]], dict[str, torch.Tensor]]:
    params = Params.model_validate(
        {
            "model": {"depth": 4},
            "hfsl": {
                "devices_per_cluster": 5,
                "allocation": rule,
                "rounds": 1,
                "batch_size": 8,
                "local_steps": 2,
            },
            "costs": {"cluster_devices": CHAIN},
        }
    )
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(DEEP)), PeftParams(lora_rank=2), seed=0)
    strategy = strategy_for(params.hfsl)
    if rule == "latency":
        strategy.block_costs = block_costs(params, model)
    assert strategy.block_ranges(4) == block_ranges(params, model)  # what infer and serve would cut
    job = EdgeJob("edge", model, [cluster(1), cluster(2)], lambda m: 0.0, 0, Channel())
    out = run_hfsl_edges([job], params.hfsl, "cpu", workers=1, strategy=strategy)["edge"]
    return out.block_ranges, tunable_state(model)


def test_latency_rule_cuts_where_the_model_says_and_trains_the_same_modules_as_balanced() -> None:
    ranges, trained = _train("latency")
    assert ranges == [(0, 1), (1, 2), (2, 4)]  # one block on the weak device, the extra one on the board
    balanced_ranges, balanced = _train("balanced")
    assert balanced_ranges == [(0, 2), (2, 3), (3, 4)]
    assert trained.keys() == balanced.keys()
    assert all(torch.equal(trained[k], balanced[k]) for k in trained)  # same function, same numbers
