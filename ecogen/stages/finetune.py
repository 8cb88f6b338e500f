"""Edge stage: frozen FM + PEFT modules fine-tuned on one domain's small labelled set."""

from __future__ import annotations

import logging
import shutil

import torch
from torch import Tensor, nn

from ecogen.config.params import Params
from ecogen.costs.flops import image_flops
from ecogen.costs.method import POOLED_DEVICE, central_costs
from ecogen.data.prepared import PreparedData, Split
from ecogen.data.seeding import derive_seed
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import ViT, parameter_count
from ecogen.peft.edge import build_edge_model, load_edge_model, save_tunable
from ecogen.peft.tunable import module_bytes, state_bytes, tunable_state
from ecogen.relay.routing import PROTOTYPES, class_prototypes
from ecogen.stages.common import edge_seed, example_input
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.stream.drift import drift_score, sample
from ecogen.training.classifier import ClassifierModule, evaluate
from ecogen.training.trainer import History, loader, make_trainer
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.finetune")


def finetune_edge(params: Params, ws: Workspace, domain: str) -> StageResult:
    seed = edge_seed(params, domain)
    data = PreparedData(ws.data)
    fm = load_fm(ws.fm)
    p = params.peft
    warm = ws.warm_start(domain)
    train = data.edge(domain)
    # the edge's style prototypes (class means of the delivered FM's token features), for the
    # relay's routing: computed here, where the images are; only the means ever leave the edge
    prototypes = class_prototypes(fm.encoder, train)
    # after a redelivery the edge re-adapts its previous modules to the new FM (warm start); in a
    # stream it starts from the modules it serves, re-tuned only when its images drifted
    model = load_edge_model(fm, p, warm, seed) if warm is not None else build_edge_model(fm, p, seed)
    drift = stream_drift(params, data, fm.encoder, domain)
    served = ws.champion(domain).is_file() and ws.cycle is None
    epochs = p.epochs
    drifted = bool(drift.get("drift")) and params.stream.on_drift == "finetune"
    ws.drifted(domain).unlink(missing_ok=True)
    if served and not drifted:
        if not params.stream.retune_epochs:
            return _served(params, ws, domain, model, prototypes, drift)
        epochs = params.stream.retune_epochs  # the served modules, re-tuned on the labels so far
    log.info(
        "finetune[%s]: %s on %d labelled images, %d epochs%s",
        domain,
        p.method,
        len(train),
        epochs,
        f", warm start from {warm}" if warm is not None else "",
    )
    test = data.test(domain)
    before: dict[str, float] = {}
    if warm is not None:  # the previous modules on the redelivered FM, before re-adapting
        acc = evaluate(model, test, params.inference.batch_size, params.accelerator)
        before["accuracy_redelivered"] = acc
    history = _fit(params, domain, model, train, epochs, seed)
    accuracy = evaluate(model, test, params.inference.batch_size, params.accelerator)
    path = ws.edge(domain) / "tunable.pt"
    save_tunable(model, path, p.method, fm)  # with FedEx-LoRA's corrections of a warm start
    if served and drifted:
        ws.drifted(domain).touch()  # HFSL runs `stream.drift_rounds` after it
    torch.save(prototypes, ws.edge(domain) / PROTOTYPES)
    finetuned = {"finetuned": 1.0} if params.stream.increments else {}
    measured = {**before, **drift, **finetuned, "accuracy": accuracy}
    measured |= modelled_finetune(params, model, epochs * len(train))
    artifact = ModelArtifact(model, example_input(test), [path])
    return _finetuned(params, domain, fm.encoder, model, measured, history, len(train), artifact)


def modelled_finetune(params: Params, model: nn.Module, images: int) -> dict[str, float]:
    """The modelled joules and seconds of the fine-tune on the edge's ``edge_server``
    (``modelled_…``, never CodeCarbon's host figures): the edge model's training FLOPs per image,
    counted by torch, × the images its epochs went through."""
    per_image = image_flops(model, params.peft.batch_size, seed=params.seed)
    return central_costs(per_image * images, params.costs.devices[POOLED_DEVICE])


def _fit(params: Params, domain: str, model: nn.Module, train: Split, epochs: int, seed: int) -> History:
    """The edge model's PEFT modules trained on the edge's labelled set; the model left on the CPU,
    in eval mode."""
    p = params.peft
    history = History("finetune", domain, len(params.data.domains))
    trainer = make_trainer(params.accelerator, epochs, [history])
    trainer.fit(
        ClassifierModule(model, lr=p.lr, augment_seed=seed),
        loader(train, p.batch_size, shuffle=True, seed=seed),
    )
    model.cpu().eval()
    return history


def _finetuned(
    params: Params,
    domain: str,
    encoder: ViT,
    model: nn.Module,
    measured: dict[str, float],
    history: History,
    labelled: int,
    artifact: ModelArtifact,
) -> StageResult:
    """The fine-tuned edge's stage result: ``measured`` (accuracies, drift) and the sizes of its
    tunable modules and of the frozen FM encoder they sit on."""
    trainable = parameter_count(model, trainable_only=True)
    total = parameter_count(encoder)  # the frozen FM encoder the modules sit on
    log.info(
        "finetune[%s]: accuracy %.4f, %d tunable of %d parameters",
        domain,
        measured["accuracy"],
        trainable,
        total,
    )
    return StageResult(
        name=f"edge-{domain}",
        metrics={
            **measured,
            "trainable_params": float(trainable),
            "total_params": float(total),
            "trainable_fraction": trainable / total,
            "tunable_bytes": float(state_bytes(tunable_state(model))),
            "fm_bytes": float(module_bytes(encoder)),
            "cloud_edge_down_bytes": float(module_bytes(encoder)),  # the FM delivered to this edge
        },
        history=dict(history.series),
        params={"domain": domain, "peft_method": params.peft.method, "labelled_images": labelled},
        models={f"edge-{domain}": artifact},
    )


def stream_drift(params: Params, data: PreparedData, encoder: ViT, domain: str) -> dict[str, float]:
    """In a stream past its first increment: the drift score of the newest client images against
    the increment before's (:mod:`ecogen.stream.drift`: a change detector, so a shift is flagged
    when it arrives, not again at every later increment), and whether it crossed the threshold."""
    state = data.stream
    if state is None or state.newest == 0:
        return {}
    clusters = data.clusters(domain, params.hfsl.clusters)
    before = torch.cat([c.x[state.rows(state.cluster, state.newest - 1)] for c in clusters])
    newest = torch.cat([c.x[state.rows(state.cluster, state.newest)] for c in clusters])
    s = params.stream
    seed = derive_seed(edge_seed(params, domain), "drift", state.newest)
    score = drift_score(
        encoder, sample(before, s.drift_samples, seed), sample(newest, s.drift_samples, seed + 1), seed
    )
    drifted = score >= s.drift_threshold
    log.info(
        "finetune[%s]: drift %.3f on increment %d against %d (threshold %.2f)%s",
        domain,
        score,
        state.newest,
        state.newest - 1,
        s.drift_threshold,
        f": DRIFT, response {s.on_drift}" if drifted else "",
    )
    return {"drift_score": score, "drift": float(drifted)}


def _served(
    params: Params, ws: Workspace, domain: str, model: nn.Module, prototypes: Tensor, drift: dict[str, float]
) -> StageResult:
    """The edge keeps the modules it serves (no drift, or no response to it): they are the
    starting point of HFSL, unchanged."""
    test = PreparedData(ws.data).test(domain)
    accuracy = evaluate(model, test, params.inference.batch_size, params.accelerator)
    path = ws.edge(domain) / "tunable.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ws.champion(domain), path)
    torch.save(prototypes, ws.edge(domain) / PROTOTYPES)
    log.info("finetune[%s]: the served modules kept (accuracy %.4f), not re-tuned", domain, accuracy)
    return StageResult(
        name=f"edge-{domain}",
        metrics={**drift, "finetuned": 0.0, "accuracy": accuracy},
        params={"domain": domain, "peft_method": params.peft.method, "warm_start": "champion"},
    )
