"""Cloud stage: the data-free knowledge relay of every edge's HFSL-tuned modules into the FM.

Edge side: each edge uploads its tunable modules (cloud_edge/up, counted) and, for the routed
weighting, the style prototypes its finetune stage computed (counted too).  Cloud side:
:func:`~ecogen.relay.relay.run_relay` with the FM and the public pool only.  Measurement, after
the relay and outside it: the relayed FM (shared head), the naive relay and every edge's model on
every domain's test set, and the FM's generated samples before and after.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ecogen.config.params import Params
from ecogen.data.prepared import PreparedData, to_float
from ecogen.models.checkpoint import load_fm, save_fm
from ecogen.models.vit import parameter_count
from ecogen.peft.tunable import module_bytes, state_bytes
from ecogen.plots import reconstruction_grid
from ecogen.relay.relay import relayed_fm, run_relay
from ecogen.relay.routing import PROTOTYPES, StyleRouter
from ecogen.split.channel import Channel, StylePrototypes, TunableModules
from ecogen.stages.common import example_input, mean
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.training.classifier import evaluate
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.relay")


def upload_modules(params: Params, ws: Workspace, channel: Channel) -> dict[str, TunableModules]:
    """Every edge sends its HFSL-tuned modules (the only thing an edge ever sends the cloud)."""
    uploads: dict[str, TunableModules] = {}
    for domain in params.data.domains:
        path = ws.hfsl(domain) / "tunable.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run hfsl (method ecogen) before relay")
        blob = torch.load(path, weights_only=True)
        uploads[domain] = channel.send(TunableModules(blob["state"]), "cloud_edge", "up")
    return uploads


def upload_prototypes(params: Params, ws: Workspace, channel: Channel) -> dict[str, StylePrototypes]:
    """Every edge sends the style prototypes its finetune stage computed (class means of the FM's
    token features on its labelled set), for the relay's routing."""
    out: dict[str, StylePrototypes] = {}
    for domain in params.data.domains:
        path = ws.edge(domain) / PROTOTYPES
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run finetune again (relay.weighting is routed)")
        proto = torch.load(path, weights_only=True)
        out[domain] = channel.send(StylePrototypes(proto), "cloud_edge", "up")
    return out


def relay(params: Params, ws: Workspace) -> StageResult:
    fm = load_fm(ws.fm)
    data = PreparedData(ws.data)
    channel = Channel()
    uploads = upload_modules(params, ws, channel)
    modules_up = channel.ledger.total("cloud_edge")
    prototypes = upload_prototypes(params, ws, channel) if params.relay.weighting == "routed" else None
    public = data.public()
    out = run_relay(
        fm, uploads, public, params.relay, params.peft, params.accelerator, params.seed, prototypes
    )
    new_fm = relayed_fm(fm, out.student)
    save_fm(new_fm, ws.relay / "fm.pt")
    torch.save(out.naive.state_dict(), ws.relay / "naive.pt")

    # measurement: every model on every domain's held-out test set
    tests = {d: data.test(d) for d in params.data.domains}

    def on_all(model: nn.Module) -> dict[str, float]:
        return {
            d: evaluate(model, t, params.inference.batch_size, params.accelerator) for d, t in tests.items()
        }

    fm_acc, naive_acc = on_all(out.student), on_all(out.naive)
    routing: dict[str, float] = {}
    if prototypes is not None:  # how often each domain's test images go to their own edge's teacher
        router = StyleRouter(fm.encoder, [p.tensor for p in prototypes.values()])
        for k, (d, t) in enumerate(tests.items()):
            routing[f"routing_accuracy_{d}"] = float((router(to_float(t.x)) == k).float().mean())
    edge_acc = {d: on_all(teacher) for d, teacher in out.teachers.items()}
    best = max(edge_acc, key=lambda d: mean(list(edge_acc[d].values())))
    sample = to_float(public[:8])
    grids = [
        reconstruction_grid(
            fm, sample, params.pretrain.mask_ratio, ws.plots / "relay_fm_before.png", params.seed
        ),
        reconstruction_grid(
            new_fm, sample, params.pretrain.mask_ratio, ws.plots / "relay_fm_after.png", params.seed
        ),
    ]
    tunable = {d: state_bytes(u.state) for d, u in uploads.items()}
    metrics = {
        "fm_mean_accuracy": mean(list(fm_acc.values())),
        "naive_mean_accuracy": mean(list(naive_acc.values())),
        "best_edge_mean_accuracy": mean(list(edge_acc[best].values())),
        "fm_vs_best_edge": mean(list(fm_acc.values())) - mean(list(edge_acc[best].values())),
        "fm_vs_naive": mean(list(fm_acc.values())) - mean(list(naive_acc.values())),
        "upload_bytes_per_edge": mean([float(v) for v in tunable.values()]),
        "cloud_edge_up_bytes": float(channel.ledger.total("cloud_edge")),
        "prototype_bytes_per_edge": (channel.ledger.total("cloud_edge") - modules_up) / len(uploads),
        "fm_bytes": float(module_bytes(new_fm.encoder)),
        "transfer_images": float(out.transfer_images),
        **{f"fm_accuracy_{d}": a for d, a in fm_acc.items()},
        **{f"naive_accuracy_{d}": a for d, a in naive_acc.items()},
        **{f"edge_{e}_accuracy_{d}": a for e, accs in edge_acc.items() for d, a in accs.items()},
        **{f"teacher_weight_{d}": w for d, w in out.teacher_weight.items()},
        **routing,
    }
    log.info(
        "relay: FM %.4f, naive %.4f, best edge (%s) %.4f mean accuracy over %d domains",
        metrics["fm_mean_accuracy"],
        metrics["naive_mean_accuracy"],
        best,
        metrics["best_edge_mean_accuracy"],
        len(tests),
    )
    first = next(iter(tests.values()))
    return StageResult(
        name="relay",
        metrics=metrics,
        history=out.history,
        params={"best_edge": best, "relay_params": parameter_count(out.student)},
        models={"fm-relayed": ModelArtifact(out.student, example_input(first))},
        artifacts=grids,
    )
