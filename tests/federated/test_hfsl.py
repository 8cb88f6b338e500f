"""HFSL rounds on tiny synthetic clusters: what changes, what crosses which link."""

import pytest
import torch
from federated_support import CFG, cluster

from ecogen.config.params import HfslParams, PeftParams
from ecogen.federated.hfsl import run_hfsl
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import state_bytes, tunable_state
from ecogen.split import Channel


def test_one_round_trains_only_tunable_modules_and_counts_bytes() -> None:
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    tunable_before = tunable_state(model)
    cfg = HfslParams(clusters=2, devices_per_cluster=4, rounds=2, batch_size=8, confidence_threshold=0.0)
    channel = Channel()
    evaluated = []
    out = run_hfsl(
        model,
        [cluster(1), cluster(2)],
        cfg,
        lambda m: evaluated.append(1) or 0.5,
        "cpu",
        seed=0,
        channel=channel,
    )
    assert len(out.accuracy) == 2 and len(evaluated) == 2
    assert all(torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if not p.requires_grad)
    assert any(not torch.equal(v, tunable_before[k]) for k, v in tunable_state(model).items())
    tunable = state_bytes(tunable_before)
    for rnd in out.bytes_per_round:
        # every cluster receives and returns exactly the tunable modules, device by device
        assert rnd["edge_client/down"] == 2 * tunable
        assert rnd["edge_client/up"] == 2 * tunable
        assert rnd["d2d/forward"] > 0 and rnd["d2d/backward"] > 0
    assert out.block_ranges == [(0, 1), (1, 2)]


def test_supervised_only_when_everything_is_labelled() -> None:
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="head"), seed=0)
    cfg = HfslParams(clusters=1, rounds=1, batch_size=8, unlabelled_weight=0.0)
    out = run_hfsl(model, [cluster(3, labelled=24)], cfg, lambda m: 0.0, "cpu", seed=0)
    # head-only: only the end device learns, so no gradient ever travels back
    assert "d2d/backward" not in out.bytes_per_round[0]


@pytest.mark.parametrize("mode", ["aligned", "adaptive"])
def test_every_pseudo_label_mode_trains_through_the_split_chain(mode: str) -> None:
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    before = tunable_state(model)
    # no labelled image: whatever trains, trains through the labeller's pseudo-labels (τ = 0: all pass)
    cfg = HfslParams(
        clusters=1,
        rounds=1,
        batch_size=4,
        pseudo_labels=mode,
        confidence_threshold=0.0,
        unlabelled_weight=0.5,
        fedavg_weights="trained",
    )
    out = run_hfsl(model, [cluster(4, labelled=0)], cfg, lambda m: 0.0, "cpu", seed=0)
    assert any(not torch.equal(v, before[k]) for k, v in tunable_state(model).items())
    assert out.bytes_per_round[0]["d2d/backward"] > 0


def _lora_edge(rank: int = 2):
    torch.manual_seed(0)
    return build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=rank), seed=0)


def _products(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """B·A of every LoRA layer in a full tunable state."""
    return {
        k.replace("lora_B", "BA"): b @ state[k.replace("lora_B", "lora_A")]
        for k, b in state.items()
        if "lora_B" in k
    }


@pytest.mark.parametrize("rule", ["separate", "frozen_a"])
def test_frozen_a_makes_lora_aggregation_exact(rule: str) -> None:
    """FFA-LoRA: with A frozen, FedAvg of B gives exactly the average of the clusters' B·A."""
    from ecogen.federated.aggregate import fedavg
    from ecogen.federated.drivers import fit_lanes
    from ecogen.federated.roles import ClusterClient
    from ecogen.federated.strategies import strategy_for
    from ecogen.peft.tunable import frozen_factor

    model = _lora_edge()
    cfg = HfslParams(batch_size=8, unlabelled_weight=0.0, lr=0.05, local_steps=3)
    start = tunable_state(model)
    with frozen_factor([model], "lora_A" if rule == "frozen_a" else None):
        clusters = [ClusterClient.of(model, cluster(s, labelled=24), 3) for s in (1, 2)]
        channel = Channel()
        for k, c in enumerate(clusters):
            fit_lanes([c], [channel], [k], strategy_for(cfg), "cpu")
        ups = [c.send(channel) for c in clusters]
        merged = {**start, **fedavg([(ups[0], 1), (ups[1], 3)])}
    full = [{**start, **u} for u in ups]
    first, second = _products(full[0]), _products(full[1])
    want = {k: 0.25 * first[k] + 0.75 * second[k] for k in first}
    got = _products(merged)
    gap = max((got[k] - want[k]).abs().max().item() for k in want)
    if rule == "frozen_a":
        assert gap <= 1e-6
        assert not any("lora_A" in k for k in ups[0])  # A never travels
    else:
        assert gap > 1e-6  # averaging A and B separately is not the average of B·A
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_A" in n)


def test_local_steps_fix_the_client_compute_and_the_edge_joins_without_links() -> None:
    model = _lora_edge()
    cfg = HfslParams(
        clusters=2, rounds=2, batch_size=4, unlabelled_weight=0.0, local_steps=5, edge_joins=True
    )
    from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges

    channel = Channel()
    job = EdgeJob(
        "e", model, [cluster(1), cluster(2)], lambda m: 0.0, 0, channel, own=cluster(9, labelled=24)
    )
    out = run_hfsl_edges([job], cfg, "cpu")["e"]
    assert out.per_round("steps") == [15, 15]  # 5 steps × (2 clusters + the edge)
    assert out.per_round("images") == [60, 60]  # batches of 4 labelled images
    # the edge's own training crosses no link: only the two clusters' modules go down and up
    assert out.bytes_per_round[0]["edge_client/down"] == 2 * state_bytes(tunable_state(model))


def test_fedprox_pulls_towards_the_round_start() -> None:
    from ecogen.federated.drivers import fit_lanes
    from ecogen.federated.roles import ClusterClient
    from ecogen.federated.strategies import strategy_for

    start = tunable_state(_lora_edge())
    moved = {}
    for method, mu in (("ecogen", 0.0), ("fedprox", 30.0)):
        model = _lora_edge()
        client = ClusterClient.of(model, cluster(1, labelled=24), 3)
        cfg = HfslParams(
            method=method,
            batch_size=8,
            unlabelled_weight=0.0,
            lr=0.01,
            optimizer="sgd",
            proximal_mu=mu,
            local_steps=20,
        )
        fit_lanes([client], [Channel()], [0], strategy_for(cfg), "cpu")
        after = tunable_state(client.model)
        moved[mu] = sum((after[k] - start[k]).norm().item() for k in start)
    assert 0 < moved[30.0] < 0.7 * moved[0.0]


def pooled_steps(**kw: object) -> int | None:
    from ecogen.federated.strategies import strategy_for

    return strategy_for(HfslParams(method="pooled_labels", **kw)).local_steps()  # type: ignore[arg-type]


def test_fedavg_weights_follow_what_a_participant_trains_on() -> None:
    from ecogen.federated.strategies.base import trained_examples

    data = cluster(1, n=24, labelled=8)
    assert trained_examples(data, HfslParams(unlabelled_weight=0.5, fedavg_weights="trained")) == 24
    assert trained_examples(data, HfslParams(unlabelled_weight=0.0, fedavg_weights="trained")) == 8
    assert trained_examples(data, HfslParams(unlabelled_weight=0.5, fedavg_weights="labelled")) == 8
    # the pooled learner gets every participant's steps: 6 clusters + the edge
    assert pooled_steps(clusters=6, local_steps=15, edge_joins=True) == 105
    assert pooled_steps(clusters=6, local_steps=15, edge_joins=False) == 90
    assert pooled_steps(clusters=6, local_steps=None) is None
