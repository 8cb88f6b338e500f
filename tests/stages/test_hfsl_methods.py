"""Every HFSL method (EcoGen and its baselines, one strategy file each) runs one round of the hfsl
stage on digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecogen.config.params import Params
from ecogen.data.prepared import PreparedData, to_float
from ecogen.federated.strategies import method_names, strategy_for
from ecogen.federated.strategies.pooled_labels import pooled_clusters
from ecogen.models.checkpoint import load_fm
from ecogen.peft.edge import BASE_DELTA, build_edge_model, load_edge_model
from ecogen.peft.tunable import load_tunable_state
from ecogen.stages.common import edge_seed
from ecogen.stages.finetune import finetune_edge
from ecogen.stages.hfsl import hfsl
from ecogen.stages.infer import infer_edge
from ecogen.stages.prepare import prepare
from ecogen.stages.pretrain import pretrain
from ecogen.workspace import Workspace

DOMAINS = ["identity", "invert"]


def _params(**hfsl_over: object) -> Params:
    return Params.model_validate(
        {
            "seed": 5,
            "accelerator": "cpu",
            "data": {
                "source": "digits",
                "domains": DOMAINS,
                "test_per_domain": 40,
                "public_pool": 200,
                "edge_labelled": 30,
                "samples_per_cluster": 48,
                "labelled_fraction": 0.25,
            },
            "model": {"patch_size": 2, "dim": 16, "depth": 2, "heads": 2, "decoder_dim": 8},
            "pretrain": {"epochs": 1, "batch_size": 64},
            "peft": {"epochs": 1, "lora_rank": 2, "batch_size": 16},
            "hfsl": {"clusters": 3, "rounds": 1, "batch_size": 4, "unlabelled_ratio": 2, **hfsl_over},
            "energy": {"enabled": False},
        }
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(Path(tmp_path_factory.mktemp("hfsl-methods")))
    params = _params()
    prepare(params, ws)
    pretrain(params, ws)
    for d in DOMAINS:
        finetune_edge(params, ws, d)
    return ws


POOLED = {"centralized", "pooled_labels", "pooled_ssl"}  # one learner, no rounds to federate
NO_LINKS = POOLED | {"edge_alone"}  # nothing crosses an edge-client link
FEDERATED = set(method_names()) - NO_LINKS - {"local"}


def test_every_method_file_is_a_strategy() -> None:
    assert {
        "ecogen",
        "centralized",
        "pooled_labels",
        "pooled_ssl",
        "local",
        "fedavg_full",
        "fedavg_peft",
        "splitfed",
        "fedprox",
        "edge_alone",
    } <= set(method_names())
    assert "base" not in method_names()


# the settings a method needs beyond the defaults (validated: ecogen/config/params.py)
NEEDS: dict[str, dict[str, object]] = {
    "fedprox": {"proximal_mu": 0.5},
    "semifl": {
        "unlabelled_weight": 1.0,
        "mixup_weight": 1.0,
        "teacher": "round_start",
        "fedavg_weights": "trained",
    },
}


def _method_params(method: str) -> Params:
    return _params(method=method, **NEEDS.get(method, {}))


@pytest.mark.parametrize("method", method_names())
def test_each_method_runs_one_round_on_digits(workspace: Workspace, method: str) -> None:
    params = _method_params(method)
    ws = Workspace(workspace.root, trial=f"{method}-r0")
    result = hfsl(params, ws)
    strategy = strategy_for(params.hfsl)
    assert [c.name for c in result.children] == [f"edge-{d}" for d in DOMAINS]
    for child in result.children:
        m = child.metrics
        assert 0.0 <= m["accuracy"] <= 1.0 and len(child.history["accuracy"]) == 1
        full = m["full_model_bytes"]
        if method in FEDERATED:
            # every cluster receives and returns what it trains: everything, or the tunable modules
            per_cluster = full if strategy.full_model else m["tunable_bytes"]
            assert m["edge_client_bytes_per_round"] >= 2 * 3 * per_cluster * 0.99
            assert (m["edge_client_bytes_per_round"] < 0.5 * m["fedavg_full_bytes_per_round"]) == (
                not strategy.full_model
            )
        if method in NO_LINKS:
            assert m["edge_client_bytes_per_round"] == 0.0
        assert (m["d2d_bytes_per_round"] > 0) == strategy.split
        # the modelled device cost of the stage, on the devices of its placement (ecogen.costs.method)
        assert m["modelled_device_energy_j"] > 0 and m["modelled_time_s"] > 0
        sent = m["edge_client_bytes_per_round"] + m["d2d_bytes_per_round"]
        assert (m["modelled_link_energy_j"] > 0) == (sent > 0)
        saved = ws.hfsl(child.name.removeprefix("edge-")) / (
            "model.pt" if strategy.full_model else "tunable.pt"
        )
        assert saved.exists() and "trials" in saved.parts
    assert result.metrics["mean_accuracy"] == pytest.approx(
        sum(c.metrics["accuracy"] for c in result.children) / len(DOMAINS)
    )


def test_the_oracle_sees_every_label_of_the_clusters_it_pools(workspace: Workspace) -> None:
    data = PreparedData(workspace.data)
    pooled = pooled_clusters(data, "identity", 2, oracle=True, edge=False)
    visible = torch.cat([data.cluster("identity", k).y for k in range(2)])
    assert len(pooled) == len(visible) and bool((pooled.y >= 0).all())
    assert torch.equal(pooled.y[visible >= 0], visible[visible >= 0])  # the known labels agree


def test_pooled_labels_sees_only_the_labels_the_system_holds(workspace: Workspace) -> None:
    data = PreparedData(workspace.data)
    pooled = pooled_clusters(data, "identity", 2, oracle=False, edge=True)
    clusters = [data.cluster("identity", k) for k in range(2)]
    held = sum(int(c.labelled.sum()) for c in clusters) + len(data.edge("identity"))
    assert len(pooled) == held and bool((pooled.y >= 0).all())
    assert torch.equal(pooled.y[-len(data.edge("identity")) :], data.edge("identity").y)


def test_pooled_ssl_keeps_the_unlabelled_images_unlabelled(workspace: Workspace) -> None:
    data = PreparedData(workspace.data)
    pooled = pooled_clusters(data, "identity", 2, oracle=False, edge=True, unlabelled=True)
    clusters = [data.cluster("identity", k) for k in range(2)]
    assert len(pooled) == sum(len(c) for c in clusters) + len(data.edge("identity"))
    assert int(pooled.labelled.sum()) == sum(int(c.labelled.sum()) for c in clusters) + len(
        data.edge("identity")
    )
    assert torch.equal(pooled.y[: len(clusters[0])], clusters[0].y)  # UNLABELLED where it was


@pytest.mark.parametrize("method", ["ecogen", "pooled_ssl"])
def test_feature_labels_run_the_rounds_with_more_labelled_images(workspace: Workspace, method: str) -> None:
    params = _params(method=method, feature_labels=0.5, feature_labels_k=3)
    result = hfsl(params, Workspace(workspace.root, trial=f"{method}-features"))
    for child in result.children:
        assert 0.0 <= child.metrics["accuracy"] <= 1.0 and len(child.history["accuracy"]) == 1


def test_mae_weight_sends_the_reconstruction_over_the_device_links_only(workspace: Workspace) -> None:
    """hfsl.mae_weight: the stage gives the clients the FM's decoder side; the MAE pass's tokens
    cross the device links, and nothing new crosses the edge↔client ones (the decoder is frozen)."""
    off = hfsl(_params(), Workspace(workspace.root, trial="mae-off"))
    on = hfsl(_params(mae_weight=0.5), Workspace(workspace.root, trial="mae-on"))
    for a, b in zip(off.children, on.children, strict=True):
        assert 0.0 <= b.metrics["accuracy"] <= 1.0
        assert b.history["bytes_d2d"][0] > a.history["bytes_d2d"][0]
        assert b.history["bytes_edge_client"] == a.history["bytes_edge_client"]


def test_more_clusters_than_prepared_is_a_clear_error(workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="prepared data has 3"):
        hfsl(_params(clusters=4), Workspace(workspace.root, trial="too-many"))


def test_cloud_step_averages_edges_every_cloud_every_rounds(workspace: Workspace) -> None:
    result = hfsl(_params(rounds=2, cloud_every=1), Workspace(workspace.root, trial="cloud"))
    states = [c.metrics for c in result.children]
    assert all(m["cloud_edge_bytes_per_round"] == 2 * m["tunable_bytes"] for m in states)  # up + down
    saved = [
        torch.load(workspace.root / "artifacts/trials/cloud/hfsl" / d / "tunable.pt")["state"]
        for d in DOMAINS
    ]
    assert all(torch.equal(saved[0][k], saved[1][k]) for k in saved[0])  # both edges hold the cloud's average


def test_a_round_that_draws_two_of_three_clusters_trains_and_pays_for_two(workspace: Workspace) -> None:
    result = hfsl(_params(clusters_per_round=2), Workspace(workspace.root, trial="drawn"))
    for child in result.children:
        m = child.metrics
        assert child.history["clusters_trained"] == [2.0] and m["clusters_trained_per_round"] == 2.0
        # down + up of the tunable modules, two clusters (the edge's own participant uses no link)
        assert m["edge_client_bytes_per_round"] == 2 * 2 * m["tunable_bytes"]
        assert m["fedavg_full_bytes_per_round"] == 2 * 2 * m["full_model_bytes"]
    assert result.history["mean_clusters_trained"] == [2.0]


def test_the_edge_alone_trains_on_its_labels_at_the_edge_participants_schedule(workspace: Workspace) -> None:
    """Its round is the edge's own participant's in EcoGen's rounds, and nothing else: the same
    client steps, on the edge's labelled images only."""
    params = _params(method="edge_alone", local_steps=3, rounds=2)
    alone = hfsl(params, Workspace(workspace.root, trial="edge-alone-schedule")).children[0]
    assert alone.metrics["client_steps_per_round"] == 3.0  # one participant: the edge
    assert alone.history["client_images"] == [12.0, 12.0]  # 3 steps × batch 4, labelled only
    joined = hfsl(
        _params(method="ecogen", local_steps=3, rounds=2, edge_joins=True),
        Workspace(workspace.root, trial="edge-joins-schedule"),
    ).children[0]
    assert joined.metrics["client_steps_per_round"] == 12.0  # 3 clusters and the edge, 3 steps each


def test_fedex_saves_its_frozen_weights_and_what_it_saved_computes_its_model(workspace: Workspace) -> None:
    """FedEx-LoRA changes the frozen LoRA weights: tunable.pt carries the change, the edge model
    rebuilt from the FM and it (as infer, the gate and the service rebuild it) predicts what the
    trained model predicts, and the change's residuals crossed the edge↔client link."""
    params = _params(lora_aggregation="fedex", rounds=2, unlabelled_weight=0.0)
    ws = Workspace(workspace.root, trial="fedex-r0")
    result = hfsl(params, ws)
    fm = load_fm(ws.fm)
    for child in result.children:
        domain = child.name.removeprefix("edge-")
        path = ws.hfsl(domain) / "tunable.pt"
        blob = torch.load(path, weights_only=True)
        assert blob[BASE_DELTA] and all(name.endswith(".base_layer.weight") for name in blob[BASE_DELTA])
        trained = child.models[f"edge-{domain}-hfsl"].module.eval()
        reloaded = load_edge_model(fm, params.peft, path, edge_seed(params, domain)).eval()
        test = PreparedData(ws.data).test(domain)
        x = to_float(test.x)
        with torch.no_grad():
            assert torch.equal(reloaded(x), trained(x))
            modules_only = build_edge_model(fm, params.peft, edge_seed(params, domain)).eval()
            load_tunable_state(modules_only, blob["state"])
            assert (modules_only(x) - trained(x)).abs().max().item() > 1e-4  # the change matters
            accuracy = float((reloaded(x).argmax(1) == test.y).float().mean())
        assert infer_edge(params, ws, domain).metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
        # round 1 delivers the modules; round 2 also round 1's residuals
        sent = child.history["bytes_edge_client"]
        assert sent[1] > sent[0]
