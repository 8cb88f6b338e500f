"""The cost model read off ``Params`` and an edge model: what one HFSL round of one cluster
would cost on the devices ``costs.cluster_devices`` names, per role and per link.

This is where a stage (or the lead's tracking) gets modelled figures to log beside CodeCarbon's
measured ones: ``round_costs(params, model).metrics()`` gives ``modelled_…`` names only.
"""

from __future__ import annotations

from torch import nn

from ecogen.config.params import DeviceClass, HfslParams, Params
from ecogen.costs.flops import SegmentFlops, segment_flops
from ecogen.costs.model import FLOAT_BYTES, RoundCosts, StepLoad
from ecogen.costs.model import block_costs as model_block_costs
from ecogen.costs.model import round_costs as model_round_costs
from ecogen.models.vit import split_segments
from ecogen.peft.edge import base_vit
from ecogen.split.allocation import BlockCosts, allocate_blocks, weighs_costs
from ecogen.split.client_training import ClientTraining


def step_load(cfg: HfslParams, tokens: int, dim: int, steps: int | None = None) -> StepLoad:
    """A client step of ``cfg``: its labelled batch, and with the unlabelled loss on, μ·B
    unlabelled images that cross the chain twice (the weak, no-grad pass and the strong view);
    ``steps`` a round (default ``hfsl.local_steps``)."""
    steps = steps or cfg.local_steps
    if steps is None:
        raise ValueError("the modelled round needs a fixed step count: give hfsl.local_steps")
    unlabelled = cfg.batch_size * cfg.unlabelled_ratio if ClientTraining.of(cfg).semi_supervised else 0
    return StepLoad(
        steps=steps,
        forward_images=cfg.batch_size + 2 * unlabelled,
        backward_images=cfg.batch_size + unlabelled,
        activation_bytes=tokens * dim * FLOAT_BYTES,
    )


def _inputs(
    params: Params, model: nn.Module, flops: SegmentFlops | None = None, steps: int | None = None
) -> tuple[SegmentFlops, StepLoad, list[tuple[str, DeviceClass]]]:
    vit = base_vit(model)
    flops = flops or segment_flops(model, params.hfsl.batch_size, seed=params.seed)
    load = step_load(params.hfsl, 1 + vit.cfg.num_patches, vit.cfg.dim, steps)
    names = params.costs.chain(params.hfsl.devices_per_cluster)
    return flops, load, [(n, params.costs.devices[n]) for n in names]


def block_costs(params: Params, model: nn.Module) -> BlockCosts:
    """The per-block costs a cost-aware allocation rule (``latency``, ``energy``) weighs."""
    # steps only scale every block's cost alike, so the cheapest split is the same at one step a
    # round: a run with local_epochs (no fixed step count) is allocated too
    flops, load, chain = _inputs(params, model, steps=params.hfsl.local_steps or 1)
    return model_block_costs(flops, load, [d for _, d in chain])


def block_ranges(params: Params, model: nn.Module, rule: str | None = None) -> list[tuple[int, int]]:
    """The middle devices' block ranges under ``rule`` (default ``hfsl.allocation``), its block
    costs counted on ``model`` when the rule weighs them: what every stage that cuts the model
    calls, so a cost-aware rule cuts it the same way in each."""
    rule = rule or params.hfsl.allocation
    costs = block_costs(params, model) if weighs_costs(rule) else None
    return allocate_blocks(len(base_vit(model).blocks), params.hfsl.devices_per_cluster, rule, costs)


def round_costs(
    params: Params, model: nn.Module, rule: str | None = None, flops: SegmentFlops | None = None
) -> RoundCosts:
    """Modelled seconds and joules of one HFSL round of one cluster, per role and link, with the
    blocks allocated by ``rule`` (default ``hfsl.allocation``); ``flops``: the model's, when
    already counted (:func:`~ecogen.costs.flops.segment_flops` on one ``hfsl.batch_size`` batch)."""
    flops, load, chain = _inputs(params, model, flops)
    vit = base_vit(model)
    costs = model_block_costs(flops, load, [d for _, d in chain])
    ranges = allocate_blocks(len(vit.blocks), len(chain), rule or params.hfsl.allocation, costs)
    segments = split_segments(vit, ranges)
    tunable = [sum(p.numel() * p.element_size() for p in s.parameters() if p.requires_grad) for s in segments]
    return model_round_costs(flops, load, chain, ranges, params.costs.links, tunable)
