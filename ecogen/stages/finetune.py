"""Edge stage: frozen FM + PEFT modules fine-tuned on one domain's small labelled set."""

from __future__ import annotations

import logging

import torch

from ecogen.config.params import Params
from ecogen.data.prepared import PreparedData
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import parameter_count
from ecogen.peft.edge import build_edge_model, load_edge_model, save_tunable
from ecogen.peft.tunable import module_bytes, state_bytes, tunable_state
from ecogen.relay.routing import PROTOTYPES, class_prototypes
from ecogen.stages.common import edge_seed, example_input
from ecogen.stages.result import ModelArtifact, StageResult
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
    # after a redelivery the edge re-adapts its previous modules to the new FM (warm start)
    model = load_edge_model(fm, p, warm, seed) if warm is not None else build_edge_model(fm, p, seed)
    log.info(
        "finetune[%s]: %s on %d labelled images, %d epochs%s",
        domain,
        p.method,
        len(train),
        p.epochs,
        f", warm start from {warm}" if warm is not None else "",
    )
    test = data.test(domain)
    before: dict[str, float] = {}
    if warm is not None:  # the previous modules on the redelivered FM, before re-adapting
        acc = evaluate(model, test, params.inference.batch_size, params.accelerator)
        before["accuracy_redelivered"] = acc
    history = History("finetune", domain, len(params.data.domains))
    trainer = make_trainer(params.accelerator, p.epochs, [history])
    trainer.fit(
        ClassifierModule(model, lr=p.lr, augment_seed=seed),
        loader(train, p.batch_size, shuffle=True, seed=seed),
    )
    model.cpu().eval()
    accuracy = evaluate(model, test, params.inference.batch_size, params.accelerator)
    path = ws.edge(domain) / "tunable.pt"
    save_tunable(model, path, p.method)
    torch.save(prototypes, ws.edge(domain) / PROTOTYPES)
    trainable = parameter_count(model, trainable_only=True)
    total = parameter_count(fm.encoder)  # the frozen FM encoder the modules sit on
    log.info("finetune[%s]: accuracy %.4f, %d tunable of %d parameters", domain, accuracy, trainable, total)
    return StageResult(
        name=f"edge-{domain}",
        metrics={
            **before,
            "accuracy": accuracy,
            "trainable_params": float(trainable),
            "total_params": float(total),
            "trainable_fraction": trainable / total,
            "tunable_bytes": float(state_bytes(tunable_state(model))),
            "fm_bytes": float(module_bytes(fm.encoder)),
            "cloud_edge_down_bytes": float(module_bytes(fm.encoder)),  # the FM delivered to this edge
        },
        history={k: v for k, v in history.series.items()},
        params={"domain": domain, "peft_method": p.method, "labelled_images": len(train)},
        models={f"edge-{domain}": ModelArtifact(model, example_input(test), [path])},
    )
