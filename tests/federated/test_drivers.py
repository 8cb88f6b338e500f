"""The batched driver trains exactly what the serial one does: same modules, same bytes."""

import pytest
import torch

from ecogen.config.params import HfslParams, PeftParams
from ecogen.data.prepared import UNLABELLED, Split
from ecogen.federated.hfsl import EdgeJob, HfslOutcome, run_hfsl_edges
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model
from ecogen.split import Channel

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=3, heads=2, num_classes=3)


def _cluster(seed: int, n: int, labelled: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n,), generator=g)
    y[labelled:] = UNLABELLED
    return Split(x, y)


def _run(driver: str, peft: str = "lora", **levers: object) -> tuple[dict[str, HfslOutcome], list]:
    torch.manual_seed(0)
    fm = MaskedAutoencoder(ViT(CFG))
    jobs = []
    for e, domain_seed in enumerate((10, 20)):
        model = build_edge_model(fm, PeftParams(method=peft, lora_rank=2), seed=e)
        # ragged: 13 and 10 labelled images in batches of 4 end their epochs at different steps
        clusters = [_cluster(domain_seed + 1, 24, 13), _cluster(domain_seed + 2, 20, 10)]
        own = _cluster(domain_seed + 9, 12, 12)
        jobs.append(EdgeJob(f"e{e}", model, clusters, lambda m: 0.0, 7 * e, Channel(), own=own))
    cfg = HfslParams(
        **{"clusters": 2, "rounds": 2, "batch_size": 4, "local_steps": 5, "unlabelled_ratio": 2, **levers},
        driver=driver,
    )
    out = run_hfsl_edges(jobs, cfg, "cpu")
    return out, [j.model for j in jobs]


LEVERS = {
    "labels only, edge joins, cloud averages": {"unlabelled_weight": 0.0, "cloud_every": 1},
    "fixmatch, weak views, aligned, logit adjustment": {
        "unlabelled_weight": 0.5,
        "augment": "weak",
        "pseudo_labels": "aligned",
        "confidence_threshold": 0.0,
        "logit_adjustment": 1.0,
    },
    "ema teacher, epochs not steps": {
        "unlabelled_weight": 0.5,
        "teacher": "ema",
        "confidence_threshold": 0.0,
        "local_steps": None,
    },
    "fedprox, sgd": {"method": "fedprox", "proximal_mu": 0.1, "optimizer": "sgd", "unlabelled_weight": 0.0},
    "fedavg of the whole model": {"method": "fedavg_full", "unlabelled_weight": 0.0},
    "local": {"method": "local", "unlabelled_weight": 0.0},
    "dp-sgd on the clusters": {"unlabelled_weight": 0.0, "dp_epsilon": 8.0, "dp_mechanism": "dp_sgd"},
    "central dp at the edge": {"unlabelled_weight": 0.0, "dp_epsilon": 8.0, "dp_mechanism": "central"},
    "dropout, segments handed over": {
        "unlabelled_weight": 0.5,
        "confidence_threshold": 0.0,
        "device_dropout": 0.4,
        "dropout_policy": "hand_over",
    },
    # FedEx-LoRA: each edge's frozen weights move apart, so the two edges train as two groups
    "fedex, dropout": {"unlabelled_weight": 0.0, "lora_aggregation": "fedex", "device_dropout": 0.4},
}


@pytest.mark.parametrize("levers", LEVERS.values(), ids=LEVERS.keys())
def test_batched_gives_the_serial_modules_and_bytes(levers: dict) -> None:
    serial, serial_models = _run("serial", **levers)
    batched, batched_models = _run("batched", **levers)
    for name in serial:
        s, b = serial[name], batched[name]
        assert s.bytes_per_round == b.bytes_per_round
        assert s.per_round("steps") == b.per_round("steps") and s.per_round("images") == b.per_round("images")
        assert s.state.keys() == b.state.keys()
        gap = max((s.state[k] - b.state[k]).abs().max().item() for k in s.state)
        assert gap <= 1e-5, f"{name}: aggregated modules differ by {gap}"
    for sm, bm in zip(serial_models, batched_models, strict=True):
        for (n, p), (_, q) in zip(sm.state_dict().items(), bm.state_dict().items(), strict=True):
            assert (p - q).abs().max().item() <= 1e-5, n


def test_the_modules_move_and_bytes_cross_every_link() -> None:
    """The equality above is not the trivial kind: a round moves the modules, and the batched
    driver's clusters send activations and gradients through their edge's channel."""
    _, (untrained, _) = _run("serial", rounds=1, local_steps=1, lr=1e-12)
    before = {n: p.detach().clone() for n, p in untrained.named_parameters() if p.requires_grad}
    out, _ = _run("batched", unlabelled_weight=0.0)
    after = out["e0"].state
    assert max((after[k] - before[k]).abs().max().item() for k in after) > 1e-3
    sent = out["e0"].bytes_per_round[0]
    assert sent["d2d/forward"] > 0 and sent["d2d/backward"] > 0 and sent["edge_client/up"] > 0


def test_fedex_edges_train_on_frozen_weights_of_their_own() -> None:
    """The case above is not trivial: after FedEx-LoRA's first residual the two edges' backbones
    differ, so the batched driver cannot stack them (it groups by backbone)."""
    from ecogen.federated.drivers import _same_backbone

    _, (first, second) = _run("batched", unlabelled_weight=0.0, lora_aggregation="fedex")
    assert not _same_backbone(first, second)
    _, (first, second) = _run("batched", unlabelled_weight=0.0)
    assert _same_backbone(first, second)
