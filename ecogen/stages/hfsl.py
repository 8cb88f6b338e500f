"""Client-cluster stage: HFSL of each edge's tunable modules on its clusters' mostly-unlabelled data."""

from __future__ import annotations

import logging

from torch import nn

from ecogen.config.params import Params
from ecogen.data.prepared import PreparedData
from ecogen.federated.hfsl import run_hfsl
from ecogen.models.checkpoint import load_fm
from ecogen.peft.edge import load_edge_model, save_tunable
from ecogen.peft.tunable import module_bytes, state_bytes, tunable_state
from ecogen.stages.common import edge_seed, example_input, mean
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.training.classifier import evaluate
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.hfsl")


def hfsl_edge(params: Params, ws: Workspace, domain: str) -> StageResult:
    seed = edge_seed(params, domain)
    data = PreparedData(ws.data)
    fm = load_fm(ws.fm)
    model = load_edge_model(fm, params.peft, ws.edge(domain) / "tunable.pt", seed)
    test = data.test(domain)
    clusters = data.clusters(domain)

    def accuracy(m: nn.Module) -> float:
        return evaluate(m, test, params.inference.batch_size, params.accelerator)

    start = accuracy(model)
    h = params.hfsl
    log.info(
        "hfsl[%s]: %d clusters × %d devices, %d rounds, start accuracy %.4f",
        domain,
        len(clusters),
        h.devices_per_cluster,
        h.rounds,
        start,
    )
    out = run_hfsl(model, clusters, h, accuracy, params.accelerator, seed, label=f"hfsl[{domain}]")
    path = ws.hfsl(domain) / "tunable.pt"
    save_tunable(model, path, params.peft.method)

    d2d = [sum(v for k, v in r.items() if k.startswith("d2d/")) for r in out.bytes_per_round]
    edge_client = [sum(v for k, v in r.items() if k.startswith("edge_client/")) for r in out.bytes_per_round]
    full = module_bytes(fm.encoder)
    fedavg_full = 2 * len(clusters) * full  # down + up of the whole model per cluster per round
    labelled = sum(int(c.labelled.sum()) for c in clusters)
    return StageResult(
        name=f"edge-{domain}",
        metrics={
            "accuracy_start": start,
            "accuracy_first": out.accuracy[0],
            "accuracy": out.accuracy[-1],
            "edge_client_bytes_per_round": mean([float(v) for v in edge_client]),
            "d2d_bytes_per_round": mean([float(v) for v in d2d]),
            "tunable_bytes": float(state_bytes(tunable_state(model))),
            "full_model_bytes": float(full),
            "fedavg_full_bytes_per_round": float(fedavg_full),
            "edge_client_bytes_vs_fedavg_full": mean([float(v) for v in edge_client]) / fedavg_full,
        },
        history={
            "accuracy": out.accuracy,
            "bytes_d2d": [float(v) for v in d2d],
            "bytes_edge_client": [float(v) for v in edge_client],
        },
        params={
            "domain": domain,
            "block_ranges": str(out.block_ranges),
            "client_images": sum(len(c) for c in clusters),
            "client_labelled": labelled,
        },
        models={f"edge-{domain}-hfsl": ModelArtifact(model, example_input(test), [path])},
    )
