"""Cloud stage: the data-free knowledge relay of every edge's HFSL-tuned modules into the FM.

Edge side: each edge uploads its tunable modules (cloud_edge/up, counted; with FedEx-LoRA also
the changes to its frozen LoRA weights) and, for the routed
weighting, the style prototypes its finetune stage computed (counted too).  Cloud side:
:func:`~ecogen.relay.relay.run_relay` with the FM and the public pool only.  Measurement, after
the relay and outside it: the relayed FM (shared head), the naive relay and every edge's model on
every domain's test set, and the FM's generated samples before and after.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ecogen.config.params import Params
from ecogen.data.prepared import PreparedData, Split, to_float
from ecogen.models.checkpoint import load_fm, save_fm
from ecogen.models.vit import MaskedAutoencoder, parameter_count
from ecogen.peft.edge import BASE_DELTA
from ecogen.peft.tunable import module_bytes, state_bytes
from ecogen.plots import reconstruction_grid
from ecogen.relay.relay import RelayOutcome, relayed_fm, run_relay
from ecogen.relay.routing import PROTOTYPES, StyleRouter
from ecogen.split.channel import BaseCorrection, Channel, StylePrototypes, TunableModules
from ecogen.stages.common import example_input
from ecogen.stages.metric import mean
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.training.classifier import evaluate
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.relay")


def _edge_file(path: Path, missing: str) -> Any:
    """What an edge sends the cloud, read from its workspace (``missing``: how to make it)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {missing}")
    return torch.load(path, weights_only=True)


def relay(params: Params, ws: Workspace) -> StageResult:
    fm = load_fm(ws.fm)
    data = PreparedData(ws.data)
    channel = Channel()
    domains = params.data.domains
    # every edge sends its HFSL-tuned modules (the only thing an edge ever sends the cloud) and, for
    # the routed weighting, the style prototypes its finetune stage computed
    uploads, bases = _uploads(ws, domains, channel)
    modules_up = channel.ledger.total("cloud_edge")
    prototypes = None
    if params.relay.weighting == "routed":
        missing = "run finetune again (relay.weighting is routed)"
        found = {d: _edge_file(ws.edge(d) / PROTOTYPES, missing) for d in domains}
        prototypes = {d: channel.send(StylePrototypes(p), "cloud_edge", "up") for d, p in found.items()}
    public = data.public()
    out = run_relay(
        fm, uploads, public, params.relay, params.peft, params.accelerator, params.seed, prototypes, bases
    )
    new_fm = relayed_fm(fm, out.student)
    save_fm(new_fm, ws.relay / "fm.pt")
    torch.save(out.naive.state_dict(), ws.relay / "naive.pt")

    # measurement: every model on every domain's held-out test set
    tests = {d: data.test(d) for d in domains}
    acc = _measure(params, fm, out, tests, prototypes)
    best = acc.best_edge()
    sample, ratio = to_float(public[:8]), params.pretrain.mask_ratio
    grids = [  # the FM's reconstructions of public images before and after the relay
        reconstruction_grid(m, sample, ratio, ws.plots / f"relay_fm_{when}.png", params.seed)
        for when, m in (("before", fm), ("after", new_fm))
    ]
    metrics = _relay_metrics(acc, best, out, new_fm, uploads, channel.ledger.total("cloud_edge"), modules_up)
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


def _uploads(
    ws: Workspace, domains: list[str], channel: Channel
) -> tuple[dict[str, TunableModules], dict[str, BaseCorrection]]:
    """Each edge's HFSL-tuned modules, sent up; and where an edge aggregated by FedEx-LoRA, the
    changes it made to the frozen weights of its LoRA layers, sent up too."""
    tuned = {
        d: _edge_file(ws.hfsl(d) / "tunable.pt", "run hfsl (method ecogen) before relay") for d in domains
    }
    uploads = {
        d: channel.send(TunableModules(blob["state"]), "cloud_edge", "up") for d, blob in tuned.items()
    }
    bases = {
        d: channel.send(
            BaseCorrection({k: v.float() for k, v in blob[BASE_DELTA].items()}), "cloud_edge", "up"
        )
        for d, blob in tuned.items()
        if BASE_DELTA in blob
    }
    return uploads, bases


class _Accuracies(NamedTuple):
    """Accuracy per domain (on its held-out test set) of the relay's models."""

    fm: dict[str, float]  # the relayed FM, shared head
    naive: dict[str, float]  # the naive relay
    edges: dict[str, dict[str, float]]  # every edge's model, by edge
    routing: dict[str, float]  # routed weighting: ``routing_accuracy_<domain>`` (else empty)

    def best_edge(self) -> str:
        """The edge whose model has the highest mean accuracy over the domains."""
        return max(self.edges, key=lambda d: mean(list(self.edges[d].values())))


def _measure(
    params: Params,
    fm: MaskedAutoencoder,
    out: RelayOutcome,
    tests: dict[str, Split],
    prototypes: dict[str, StylePrototypes] | None,
) -> _Accuracies:
    """The relayed FM, the naive relay and every edge's model on every domain's test set and, for
    the routed weighting, how often each domain's test images go to their own edge's teacher."""

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
    return _Accuracies(fm_acc, naive_acc, edge_acc, routing)


def _relay_metrics(
    acc: _Accuracies,
    best: str,
    out: RelayOutcome,
    new_fm: MaskedAutoencoder,
    uploads: dict[str, TunableModules],
    up_bytes: int,
    modules_up: int,
) -> dict[str, float]:
    """The stage's metrics: mean accuracies and the FM's margins, traffic (what the edges sent the
    cloud: modules per edge, all of it, prototypes per edge), sizes, then per domain."""
    fm_mean, naive_mean = mean(list(acc.fm.values())), mean(list(acc.naive.values()))
    best_mean = mean(list(acc.edges[best].values()))
    return {
        "fm_mean_accuracy": fm_mean,
        "naive_mean_accuracy": naive_mean,
        "best_edge_mean_accuracy": best_mean,
        "fm_vs_best_edge": fm_mean - best_mean,
        "fm_vs_naive": fm_mean - naive_mean,
        "upload_bytes_per_edge": mean([float(state_bytes(u.state)) for u in uploads.values()]),
        "cloud_edge_up_bytes": float(up_bytes),
        "prototype_bytes_per_edge": (up_bytes - modules_up) / len(uploads),
        "fm_bytes": float(module_bytes(new_fm.encoder)),
        "transfer_images": float(out.transfer_images),
        **{f"fm_accuracy_{d}": a for d, a in acc.fm.items()},
        **{f"naive_accuracy_{d}": a for d, a in acc.naive.items()},
        **{f"edge_{e}_accuracy_{d}": a for e, accs in acc.edges.items() for d, a in accs.items()},
        **{f"teacher_weight_{d}": w for d, w in out.teacher_weight.items()},
        **acc.routing,
    }
