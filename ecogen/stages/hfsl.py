"""Client-cluster stage: HFSL (or a baseline) of every edge's model on its clusters' data.

All edges run in one call so the cloud can aggregate across them every ``hfsl.cloud_every``
rounds; inside, the clusters of every edge train in parallel threads.  Clusters are handed to
the rounds unread (:class:`~ecogen.data.prepared.SplitFile`): a cluster's images are read when
it takes part, which, with ``hfsl.clusters_per_round``, is in the rounds that draw it only; the
cluster-mix metrics read the clusters' labels alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ecogen.config.params import HfslParams, Params
from ecogen.costs.flops import segment_flops
from ecogen.costs.method import MethodKind, Workload, method_costs
from ecogen.costs.round import block_costs, step_load
from ecogen.data.prepared import UNLABELLED, PreparedData, Split, SplitSource
from ecogen.data.seeding import derive_seed
from ecogen.federated.hfsl import EdgeJob, HfslOutcome, run_hfsl_edges
from ecogen.federated.strategies import strategy_for
from ecogen.federated.strategies.base import Strategy
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import MaskedAutoencoder
from ecogen.peft.edge import base_vit, load_edge_model
from ecogen.peft.tunable import frozen_factor, module_bytes, state_bytes, tunable_state
from ecogen.split.allocation import weighs_costs
from ecogen.split.reconstruction import ChainReconstruction
from ecogen.stages.common import edge_seed, example_input
from ecogen.stages.hfsl_metrics import edge_metrics, link_bytes
from ecogen.stages.metric import mean
from ecogen.stages.result import ModelArtifact, StageResult, combine
from ecogen.training.classifier import class_accuracy, evaluate, mix_accuracy
from ecogen.training.feature_labels import feature_labelled_all
from ecogen.training.pseudo_label import class_prior
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.hfsl")


@dataclass
class EdgeStart:
    """An edge as HFSL finds it: its job for the round loop, test set, and accuracies before."""

    job: EdgeJob
    test: Split
    accuracy: float
    priors: list[Tensor]  # each cluster's labelled class mix
    mix_accuracy: float  # on the edge's test set re-weighted to each cluster's mix, mean


def hfsl(params: Params, ws: Workspace) -> StageResult:
    params = _warm_started(params, ws)
    strategy = strategy_for(params.hfsl)
    data = PreparedData(ws.data)
    fm = load_fm(ws.fm)
    if params.hfsl.mae_weight > 0:  # the FM's decoder side, frozen, to every end device
        ratio = params.hfsl.mae_mask_ratio or params.pretrain.mask_ratio
        strategy.reconstruction = ChainReconstruction(fm, ratio)
    edges = [_edge_start(params, ws, data, fm, strategy, domain) for domain in params.data.domains]
    jobs = [e.job for e in edges]
    if jobs and weighs_costs(params.hfsl.allocation):  # costs.cluster_devices' costs, counted once
        strategy.block_costs = block_costs(params, jobs[0].model)
    with frozen_factor([j.model for j in jobs], strategy.lora_factor()):
        outcomes = run_hfsl_edges(
            jobs, params.hfsl, params.accelerator, strategy=strategy, checkpoint=ws.hfsl_rounds
        )
    children = [
        _edge_result(params, ws, e.job, outcomes[e.job.name], e.accuracy, e.test, fm, strategy) for e in edges
    ]
    for e, child in zip(edges, children, strict=True):
        # each cluster's own label mix: the edge's test set re-weighted to the cluster's labels
        child.metrics["accuracy_cluster_mix_start"] = e.mix_accuracy
        models = outcomes[e.job.name].cluster_models
        if not models:  # one model serves every cluster
            mix = cluster_mix_accuracy(e.job.model, e.priors, e.test, params)
        else:  # each cluster is served by its own model
            pairs = zip(models, e.priors, strict=True)
            mix = mean([cluster_mix_accuracy(m, [c], e.test, params) for m, c in pairs])
        child.metrics["accuracy_cluster_mix"] = mix
    return combine("hfsl", children)


def _warm_started(params: Params, ws: Workspace) -> Params:
    """A stream run warm-started from the served modules runs `stream.warm_rounds` rounds, or
    `stream.drift_rounds` when an edge's images drifted and it re-tuned; any other, hfsl.rounds."""
    if not all(ws.champion(d).is_file() for d in params.data.domains):
        return params
    drifted = any(ws.drifted(d).is_file() for d in params.data.domains)
    rounds = params.stream.warm_rounds_for(drifted)
    log.info("hfsl: warm start from the served modules, %d rounds%s", rounds, " (drift)" if drifted else "")
    return params.model_copy(update={"hfsl": params.hfsl.model_copy(update={"rounds": rounds})})


def _edge_start(
    params: Params, ws: Workspace, data: PreparedData, fm: MaskedAutoencoder, strategy: Strategy, domain: str
) -> EdgeStart:
    h = params.hfsl
    seed = derive_seed(edge_seed(params, domain), "replicate", params.replicate)
    edge = load_edge_model(fm, params.peft, ws.edge(domain) / "tunable.pt", edge_seed(params, domain))
    model = strategy.model(edge)
    test = data.test(domain)

    def accuracy(m: nn.Module) -> float:
        return evaluate(m, test, params.inference.batch_size, params.accelerator)

    own_clusters = data.cluster_files(domain, h.clusters)  # each cluster's data, unread
    clusters, own = strategy.participants(data, domain, own_clusters)
    if h.feature_labels > 0:  # a pooled learner's data hold the edge's labels: no bank beside them
        clusters = feature_labelled_all(
            clusters, fm.encoder, None if strategy.pooled else data.edge(domain), h
        )
    start = accuracy(model)
    priors = cluster_priors(own_clusters, base_vit(model).cfg.num_classes)
    mix = cluster_mix_accuracy(model, priors, test, params)
    log.info(
        "hfsl[%s]: %s (%s), %d clusters × %d devices, %d rounds, start accuracy %.4f",
        domain,
        h.method,
        strategy.title,
        h.clusters,
        h.devices_per_cluster,
        h.rounds,
        start,
    )
    return EdgeStart(EdgeJob(domain, model, clusters, accuracy, seed, own=own), test, start, priors, mix)


def cluster_priors(clusters: Sequence[SplitSource], classes: int) -> list[Tensor]:
    """The class mix of each cluster's labelled images (its labels read, not its images)."""
    return [class_prior(c.labels(), classes) for c in clusters]


def cluster_mix_accuracy(model: nn.Module, priors: list[Tensor], test: Split, params: Params) -> float:
    """Mean over the clusters of the accuracy on the edge's test set re-weighted to the class mix of
    the cluster's labelled images (``priors``, :func:`cluster_priors`): what each cluster's users,
    who ask about their own classes, see from ``model``."""
    classes = base_vit(model).cfg.num_classes
    per_class = class_accuracy(model, test, params.inference.batch_size, params.accelerator, classes)
    return mean([mix_accuracy(per_class, prior) for prior in priors])


def _edge_result(
    params: Params,
    ws: Workspace,
    job: EdgeJob,
    out: HfslOutcome,
    start: float,
    test: Split,
    fm: MaskedAutoencoder,
    strategy: Strategy,
) -> StageResult:
    h, domain, model = params.hfsl, job.name, job.model
    path = strategy.save(model, ws.hfsl(domain), params.peft.method, fm)
    full = module_bytes(fm.encoder)
    clusters = job.clusters
    return StageResult(
        name=f"edge-{domain}",
        metrics={
            **edge_metrics(out, start, state_bytes(tunable_state(model)), full, h),
            **_privacy(h, out),
            **modelled_metrics(params, model, out, strategy),
        },
        history={
            "accuracy": out.accuracy,
            "bytes_d2d": link_bytes(out, "d2d"),
            "bytes_edge_client": link_bytes(out, "edge_client"),
            "client_images": [float(v) for v in out.per_round("images")],
            "clusters_trained": [float(v) for v in out.per_round("trained")],
        },
        params={
            "domain": domain,
            "method": h.method,
            "block_ranges": str(out.block_ranges),
            "client_images": sum(len(c) for c in clusters),
            "client_labelled": sum(int((c.labels() != UNLABELLED).sum()) for c in clusters),
        },
        models={f"edge-{domain}-hfsl": ModelArtifact(model, example_input(test), [path])},
    )


def modelled_metrics(
    params: Params, model: nn.Module, out: HfslOutcome, strategy: Strategy
) -> dict[str, float]:
    """The stage's modelled device and link joules and wall seconds at this edge (``modelled_…``,
    never CodeCarbon's host figures), on the devices ``costs`` names for this method's placement,
    from the images and bytes its rounds recorded (:func:`ecogen.costs.method.method_costs`)."""
    h = params.hfsl
    vit = base_vit(model)
    # a step's unlabelled weak view goes forward without a backward: scale the measured images
    load = step_load(h, 1 + vit.cfg.num_patches, vit.cfg.dim, steps=1)
    images = float(sum(out.per_round("images")))
    trained = float(sum(out.per_round("trained")))
    work = Workload(
        forward_images=images * load.forward_images / load.backward_images,
        backward_images=images,
        cluster_rounds=trained,
        rounds=len(out.records),
        link_bytes={link: sum(link_bytes(out, link)) for link in ("d2d", "edge_client")},
    )
    chain = [(n, params.costs.devices[n]) for n in params.costs.chain(h.devices_per_cluster)]
    costs = method_costs(
        # a learner no cluster took part in (pooled data, the edge alone) trains at the edge
        MethodKind(split=strategy.split, pooled=strategy.pooled or not trained),
        segment_flops(model, h.batch_size, seed=params.seed),
        chain,
        out.block_ranges,
        params.costs.devices,
        params.costs.links,
        work,
    )
    return costs.metrics()


def _privacy(h: HfslParams, out: HfslOutcome) -> dict[str, float]:
    """DP: the noise multiplier used and the ε the accountant gives for all rounds (upload noise,
    central DP); for DP-SGD, the accountant's ε of the steps each participant took, the largest, with its
    σ and sampling rate (every participant's own: their labelled counts differ)."""
    if h.dp == "dp_sgd":
        from ecogen.federated import example_dp  # the accountant library loads only where DP is on

        spent = [(example_dp.epsilon_spent(v, h.dp_delta), v) for v in out.dp_history.values() if v]
        if not spent:
            return {"dp_epsilon_spent": 0.0}
        eps, history = max(spent, key=lambda e: e[0])
        sigma, rate, _ = history[-1]
        return {"dp_noise_multiplier": sigma, "dp_sample_rate": rate, "dp_epsilon_spent": eps}
    if not h.dp_epsilon:
        return {}
    from ecogen.federated import privacy  # the accountant library loads only where DP is on

    sigma = privacy.noise_multiplier(h.dp_epsilon, h.rounds, h.dp_delta)
    return {"dp_noise_multiplier": sigma, "dp_epsilon": privacy.epsilon(sigma, h.rounds, h.dp_delta)}
