"""SL inference stage: each domain's test set through the split chain of its HFSL-tuned edge model."""

from __future__ import annotations

import logging

from ecogen.config.params import Params
from ecogen.costs.round import block_ranges
from ecogen.data.prepared import PreparedData
from ecogen.federated.strategies import strategy_for
from ecogen.inference.split_inference import SplitInference, link_seconds
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import split_segments
from ecogen.peft.edge import base_vit, load_edge_model
from ecogen.split.channel import Channel
from ecogen.stages.common import edge_seed
from ecogen.stages.result import StageResult
from ecogen.training.trainer import loader, make_trainer
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.infer")


def infer_edge(params: Params, ws: Workspace, domain: str) -> StageResult:
    seed = edge_seed(params, domain)
    if strategy_for(params.hfsl).full_model:
        raise ValueError(
            f"infer serves EcoGen's tunable modules; hfsl.method {params.hfsl.method!r} trains the full "
            "model (it is a baseline for comparison, not a served configuration)"
        )
    data = PreparedData(ws.data)
    model = load_edge_model(load_fm(ws.fm), params.peft, ws.hfsl(domain) / "tunable.pt", seed).eval()
    ranges = block_ranges(params, model)
    channel = Channel()
    module = SplitInference(model, split_segments(base_vit(model), ranges), channel)
    test = data.test(domain)
    make_trainer(params.accelerator, max_epochs=1).predict(
        module, loader(test, params.inference.batch_size, shuffle=False, seed=0), return_predictions=False
    )
    rep, n = module.report, module.report.total
    compute_ms = 1e3 * sum(rep.compute_s) / n  # batched compute, amortised per request
    # one request alone on the links: its bytes on every hop plus every hop's propagation delay
    per_request_link_ms = 1e3 * sum(link_seconds(b // n, 1, params.inference) for b in rep.hop_bytes)
    metrics = {
        "accuracy": rep.accuracy,
        "split_agreement": rep.agree_with_unsplit / n,
        "bytes_per_request": sum(rep.hop_bytes) / n,
        "compute_ms_per_request": compute_ms,
        "link_ms_per_request": per_request_link_ms,
        "latency_ms_per_request": compute_ms + per_request_link_ms,
        "requests": float(n),
    }
    for i, b in enumerate(rep.hop_bytes):
        metrics[f"hop{i + 1}_bytes_per_request"] = b / n
    for i, s in enumerate(rep.compute_s):
        metrics[f"device{i}_compute_ms_per_request"] = 1e3 * s / n
    log.info(
        "infer[%s]: accuracy %.4f, %.0f bytes and %.2f ms per request",
        domain,
        rep.accuracy,
        metrics["bytes_per_request"],
        metrics["latency_ms_per_request"],
    )
    return StageResult(
        name=f"edge-{domain}", metrics=metrics, params={"domain": domain, "block_ranges": str(ranges)}
    )
