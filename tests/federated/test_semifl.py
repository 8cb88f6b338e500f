"""SemiFL (method semifl): the clusters train on the delivered model's confident pseudo-labels only,
the edge averages them and then trains the average on its own labels, and that is what the next
round delivers."""

import pytest
import torch
from federated_support import CFG, cluster
from pydantic import ValidationError

from ecogen.config.params import HfslParams, PeftParams
from ecogen.data.prepared import UNLABELLED
from ecogen.federated.drivers import fit_lanes, seed_of
from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges
from ecogen.federated.roles import EdgeClient, EdgeServer
from ecogen.federated.strategies.semifl import SemiFL, Unlabelled
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.peft.tunable import load_tunable_state, tunable_state
from ecogen.split import Channel

SEMIFL = dict(
    method="semifl",
    clusters=2,
    batch_size=4,
    local_steps=3,
    lr=0.05,
    unlabelled_weight=1.0,
    mixup_weight=1.0,
    teacher="round_start",
    fedavg_weights="trained",
)


def _edge():
    torch.manual_seed(0)
    return build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)


class _Spy(SemiFL):
    """SemiFL that keeps, per round, the state the edge delivered and the clusters' trained modules."""

    def __init__(self, cfg: HfslParams) -> None:
        super().__init__(cfg)
        self.rounds: list[tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]] = []

    def aggregate(self, edges: list[EdgeServer], r: int) -> None:
        (e,) = edges
        clusters = [tunable_state(c.model) for c in e.clients if c.over_links]
        self.rounds.append(({k: v.clone() for k, v in e.state.items()}, clusters))
        super().aggregate(edges, r)


def _run(rounds: int, **kw: object) -> tuple[_Spy, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    cfg = HfslParams(**{**SEMIFL, "rounds": rounds, **kw})  # type: ignore[arg-type]
    model = _edge()
    start = tunable_state(model)
    spy = _Spy(cfg)
    clusters = [Unlabelled(cluster(1)), Unlabelled(cluster(2))]
    job = EdgeJob("e", model, clusters, lambda m: 0.0, 0, Channel(), own=cluster(9, labelled=24))
    run_hfsl_edges([job], cfg, "cpu", strategy=spy)
    return spy, start, tunable_state(model)


def _edge_step(state: dict[str, torch.Tensor], r: int, cfg: HfslParams) -> dict[str, torch.Tensor]:
    """What the edge's supervised step of round ``r`` makes of ``state``: its participant (number 2,
    after the two clusters) trained alone on its 24 labels."""
    model = _edge()
    load_tunable_state(model, state)
    own = EdgeClient.of(model, cluster(9, labelled=24), 3)
    seed = seed_of(EdgeServer("e", model, [], lambda m: 0.0, 0), r, 2)
    fit_lanes([own], [Channel()], [seed], SemiFL(cfg), "cpu", r)
    return tunable_state(own.model)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_with_no_pseudo_label_kept_each_round_is_the_edges_supervised_step_delivered() -> None:
    # τ = 1: no pseudo-label passes, so neither the fix nor the mix loss trains a cluster
    spy, start, end = _run(rounds=2, confidence_threshold=1.0)
    cfg = HfslParams(**{**SEMIFL, "rounds": 2, "confidence_threshold": 1.0})  # type: ignore[arg-type]
    first = _edge_step(start, 0, cfg)
    (delivered0, ups0), (delivered1, ups1) = spy.rounds
    assert _same(delivered0, start)  # round 0 delivers the edge's fine-tuned model
    assert len(ups0) == 2 and all(_same(u, start) for u in ups0)  # the clusters come back unchanged
    # the edge trained the clusters' average on its labels (after it, not averaged with it), and
    # that is what round 1 delivered
    assert _same(delivered1, first) and not _same(first, start)
    assert all(_same(u, first) for u in ups1)
    assert _same(end, _edge_step(first, 1, cfg))


def test_the_clusters_learn_from_confident_pseudo_labels_with_the_mix_loss_over_the_links() -> None:
    spy, start, _ = _run(rounds=1, confidence_threshold=0.0)
    (_, ups), *_ = spy.rounds
    assert all(not _same(u, start) for u in ups)  # τ = 0: every pseudo-label trains
    cfg = HfslParams(**{**SEMIFL, "rounds": 1, "confidence_threshold": 0.0})  # type: ignore[arg-type]
    out = {}
    for weight in (0.0, 1.0):
        model = _edge()
        job = EdgeJob(
            "e", model, [Unlabelled(cluster(1))], lambda m: 0.0, 0, Channel(), own=cluster(9, 24, 24)
        )
        res = run_hfsl_edges([job], cfg.model_copy(update={"mixup_weight": weight}), "cpu")["e"]
        out[weight] = (tunable_state(model), res.bytes_per_round[0]["d2d/forward"], res.per_round("images"))
    # the mix loss trains the clusters (more than the float rounding of a larger batch would move them)
    gap = max((out[0.0][0][k] - out[1.0][0][k]).abs().max().item() for k in out[0.0][0])
    assert gap > 1e-3, gap
    # the mixed images go through the chain too: the teacher's pass and the training pass sent 12 +
    # 12 images' activations over each link a step, with the mix 12 + 24
    assert 2 * out[1.0][1] == 3 * out[0.0][1]
    # client images: 3 steps × 12 unlabelled (μ = 3 × batch 4), doubled by the mix, + the edge's 3 × 4
    assert out[0.0][2] == [3 * 12 + 3 * 4] and out[1.0][2] == [3 * 24 + 3 * 4]


class _Data:
    def edge(self, domain: str):  # type: ignore[no-untyped-def]
        return cluster(9, labelled=24)


def test_the_clusters_hold_no_label_unless_asked_and_the_edge_never_joins_the_average() -> None:
    clusters = [cluster(1), cluster(2)]
    withheld, own = SemiFL(HfslParams(**SEMIFL)).participants(_Data(), "d", clusters)  # type: ignore[arg-type]
    assert own is not None and bool(own.labelled.all())
    for c, w in zip(clusters, withheld, strict=True):
        assert len(w) == len(c) and bool((w.labels() == UNLABELLED).all())
        assert bool((w.load().y == UNLABELLED).all()) and torch.equal(w.load().x, c.x)
    kept, _ = SemiFL(HfslParams(**{**SEMIFL, "semifl_client_labels": True})).participants(
        _Data(), "d", clusters
    )  # type: ignore[arg-type]
    assert list(kept) == clusters
    strategy = SemiFL(HfslParams(**SEMIFL))
    model = _edge()
    assert not strategy.trains_in_round(EdgeClient.of(model, own, 3))


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"teacher": "self"}, "teacher round_start"),
        ({"unlabelled_weight": 0.0, "mixup_weight": 0.0}, "unlabelled_weight > 0"),
        ({"fedavg_weights": "labelled"}, "fedavg_weights trained"),
        ({"method": "ecogen", "semifl_client_labels": True}, "method semifl only"),
        ({"method": "ecogen", "unlabelled_weight": 0.0}, "mixup_weight"),
    ],
)
def test_semifl_and_mixup_settings_are_validated(kw: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        HfslParams(**{**SEMIFL, **kw})  # type: ignore[arg-type]
    HfslParams(**{**SEMIFL, "fedavg_weights": "labelled", "semifl_client_labels": True})  # type: ignore[arg-type]
