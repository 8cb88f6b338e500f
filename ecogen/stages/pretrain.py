"""Cloud stage: masked-autoencoder pre-training of the FM on the unlabelled public pool."""

from __future__ import annotations

import logging

import lightning as L
import torch

from ecogen.config.params import Params
from ecogen.costs.flops import mae_step_flops
from ecogen.costs.method import central_costs
from ecogen.data.prepared import PreparedData, Split, to_float
from ecogen.data.seeding import derive_seed
from ecogen.models.checkpoint import save_fm
from ecogen.models.export import PooledFeatures
from ecogen.models.vit import MaskedAutoencoder, ViT, parameter_count
from ecogen.peft.tunable import module_bytes
from ecogen.plots import reconstruction_grid
from ecogen.stages.common import example_input, vit_config
from ecogen.stages.result import ModelArtifact, StageResult
from ecogen.training.mae import MAEModule
from ecogen.training.resident import index_loader
from ecogen.training.trainer import History, make_trainer, trainer_precision
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.pretrain")


def pretrain(params: Params, ws: Workspace) -> StageResult:
    p = params.pretrain
    # draw 0 is the FM every earlier run pre-trained; each other draw its own stream of seeds
    seed = derive_seed(params.seed, "fm", p.draw) if p.draw else params.seed
    L.seed_everything(seed, workers=True, verbose=False)
    data = PreparedData(ws.data)
    cfg = vit_config(params.model, data.meta)
    mae = MaskedAutoencoder(ViT(cfg))
    pool = data.public()
    draw = f" (FM draw {p.draw})" if p.draw else ""
    log.info("pretrain: MAE on %d unlabelled images, %d epochs%s", len(pool), p.epochs, draw)
    loader = index_loader(
        (to_float(pool),), p.batch_size, True, seed, params.accelerator, drop_last=p.compile
    )
    module = MAEModule(mae, p.scaled_lr(), p.weight_decay, p.mask_ratio, seed=seed, compile=p.compile)
    history = History("pretrain")
    precision = trainer_precision(p.precision, params.accelerator)
    make_trainer(params.accelerator, p.epochs, [history], precision=precision).fit(module, loader)
    mae.cpu().eval()
    save_fm(mae, ws.fm)
    grid = reconstruction_grid(
        mae, to_float(pool[:8]), p.mask_ratio, ws.plots / "fm_reconstructions.png", seed
    )
    example = example_input(Split(pool[:2], torch.zeros(2, dtype=torch.long)))
    return StageResult(
        name="pretrain",
        metrics={
            "mae_loss": history.series["mae_loss"][-1],
            "fm_params": float(parameter_count(mae)),
            "encoder_params": float(parameter_count(mae.encoder)),
            "encoder_bytes": float(module_bytes(mae.encoder)),
            "public_images": float(len(pool)),
            **modelled_pretrain(params, mae, p.epochs * len(pool)),
        },
        history={"mae_loss": history.series["mae_loss"]},
        params={"image_size": cfg.image_size, "num_patches": cfg.num_patches, "lr_effective": p.scaled_lr()},
        # the FM's head is never trained: users get what it is for, features
        models={"fm": ModelArtifact(PooledFeatures(mae.encoder), example, [ws.fm], output="features")},
        artifacts=[grid],
    )


CLOUD_DEVICE = "cloud_gpu"  # where the cost model places the FM's pre-training


def modelled_pretrain(params: Params, mae: MaskedAutoencoder, images: int) -> dict[str, float]:
    """The modelled device joules and seconds of the MAE pre-training on ``cloud_gpu``
    (``modelled_…``, never CodeCarbon's host figures): one step's FLOPs, counted by torch on a
    ``pretrain.batch_size`` batch, per image × the images it went through."""
    batch = params.pretrain.batch_size
    per_image = mae_step_flops(mae, batch, params.pretrain.mask_ratio, seed=params.seed) / batch
    return central_costs(per_image * images, params.costs.devices[CLOUD_DEVICE])
