"""How a round's participants run their local training: ``hfsl.driver``.

Both drivers train through the one client step
(:class:`~ecogen.split.semi_supervised.StackedSemiSupervised` over a
:class:`~ecogen.split.stacked.StackedChain`, :func:`fit_lanes`); they differ only in how they
group participants into lanes:

* ``serial`` — one lane each, a few at a time in threads of this process, each with its share of
  the cores.  The reference.
* ``batched`` — participants that share a frozen backbone and a step count train as one
  computation: every cluster of every edge in one forward and backward pass per step, their
  tunable modules stacked.  Same batches, same views, same losses, same bytes through the same
  channels; the results agree with ``serial`` to float rounding.  Participants with different
  frozen weights (edges whose LoRA A is kept frozen as each edge trained it) or different step
  counts (``local_steps: null`` over unequal data) form separate groups.

Both return, per participant in order, (edge name, client steps, images trained on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from ecogen.federated.roles import ClusterClient, EdgeServer
from ecogen.federated.strategies.base import Strategy
from ecogen.peft.edge import base_vit
from ecogen.peft.tunable import load_tunable_state
from ecogen.runtime.environment import share_cores, use_cores
from ecogen.split.channel import Channel
from ecogen.split.semi_supervised import FixMatchBatches, StackedBatches, StackedSemiSupervised
from ecogen.split.stacked import StackedChain
from ecogen.training.pseudo_label import class_prior
from ecogen.training.trainer import make_trainer

Task = tuple[EdgeServer, int, ClusterClient]  # (edge, participant's number (EdgeServer.number), participant)
Done = tuple[str, int, int]  # (edge name, steps, images)


def seed_of(edge: EdgeServer, r: int, k: int) -> int:
    # participant k's seed in round r; an edge that draws its rounds' clusters may have thousands,
    # so its rounds lie a (prime) million apart, and no two (round, cluster) pairs share a seed
    return edge.seed + (1_000_003 if edge.numbers else 1000) * r + k


def fit_serial(tasks: list[Task], strategy: Strategy, accelerator: str, r: int, workers: int) -> list[Done]:
    def one(task: Task) -> Done:
        use_cores(share)
        edge, k, client = task
        steps, images = fit_lanes([client], [edge.channel], [seed_of(edge, r, k)], strategy, accelerator, r)
        return edge.name, steps, images[0]

    # no oversubscription: each parallel participant gets its share of torch's threads
    with share_cores(workers) as share, ThreadPoolExecutor(workers, thread_name_prefix="cluster") as pool:
        return list(pool.map(one, tasks))


def _steps_of(client: ClusterClient, strategy: Strategy, steps: int | None, seed: int) -> int:
    if steps is not None:
        return steps
    t = strategy.client
    sampler = FixMatchBatches(client.data.labelled, t.batch_size, t.unlabelled_ratio, seed, t.uses_unlabelled)
    return len(sampler) * strategy.cfg.local_epochs


def _frozen(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if not p.requires_grad] + list(model.buffers())


def _same_backbone(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_frozen(a), _frozen(b), strict=True))


def fit_batched(tasks: list[Task], strategy: Strategy, accelerator: str, r: int, workers: int) -> list[Done]:
    steps = strategy.local_steps()
    seeds = [seed_of(e, r, k) for e, k, _ in tasks]
    counts = [_steps_of(c, strategy, steps, s) for (_, _, c), s in zip(tasks, seeds, strict=True)]
    groups: list[list[int]] = []
    for i, (_, _, client) in enumerate(tasks):
        home = next(
            (
                g
                for g in groups
                if counts[g[0]] == counts[i] and _same_backbone(tasks[g[0]][2].model, client.model)
            ),
            None,
        )
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    done: list[Done] = [("", 0, 0)] * len(tasks)
    for group in groups:
        clients = [tasks[i][2] for i in group]
        channels = [tasks[i][0].channel for i in group]
        taken, images = fit_lanes(clients, channels, [seeds[i] for i in group], strategy, accelerator, r)
        for lane, i in enumerate(group):
            done[i] = (tasks[i][0].name, taken, images[lane])
    return done


Driver = Callable[[list[Task], Strategy, str, int, int], list[Done]]
# hfsl.driver → how round r's participants train: (tasks, strategy, accelerator, r, workers) → done
DRIVERS: dict[str, Driver] = {"serial": fit_serial, "batched": fit_batched}


def fit_lanes(
    clients: Sequence[ClusterClient],
    channels: Sequence[Channel],
    seeds: Sequence[int],
    strategy: Strategy,
    accelerator: str,
    r: int = 0,
) -> tuple[int, list[int]]:
    """Round ``r``'s local training of ``clients`` (one lane each, sharing a frozen backbone and a
    step count), each through its edge's channel with its seed; their models take the result.
    Returns (client steps taken, images each lane trained on)."""
    cfg = strategy.cfg
    count = _steps_of(clients[0], strategy, strategy.local_steps(), seeds[0])
    template = clients[0].model
    vit = base_vit(template)
    chain = StackedChain(
        template,
        strategy.block_ranges(len(vit.blocks)),
        [ch if strategy.split and c.over_links else None for c, ch in zip(clients, channels, strict=True)],
        [n for n, p in template.named_parameters() if p.requires_grad],
        [c.crossings() if c.hosts else None for c in clients],
    )
    for lane, client in enumerate(clients):
        chain.load(lane, dict(client.model.named_parameters()))
    if cfg.dp == "dp_sgd":  # each cluster's records private; the edge's own participant is not
        return _fit_private(chain, clients, seeds, strategy, accelerator, r, count)
    module = StackedSemiSupervised(
        chain,
        strategy.client,
        list(seeds),
        [class_prior(c.data.y, vit.cfg.num_classes) for c in clients],
        count,
        (r / cfg.rounds, (r + 1) / cfg.rounds),  # this round's share of the client lr schedule
        strategy.gradient_term,
        strategy.reconstruction,
    )
    data = StackedBatches([c.data for c in clients], strategy.client, list(seeds), count)
    make_trainer(accelerator, max_epochs=1).fit(module, torch.utils.data.DataLoader(data, batch_size=None))
    chain.cpu()
    for lane, client in enumerate(clients):
        load_tunable_state(client.model, chain.state(lane))
    return module.steps, module.images


def _fit_private(
    chain: StackedChain,
    clients: Sequence[ClusterClient],
    seeds: Sequence[int],
    strategy: Strategy,
    accelerator: str,
    r: int,
    count: int,
) -> tuple[int, list[int]]:
    """:func:`fit_lanes`'s round ``r`` under example-level DP-SGD (``hfsl.dp_mechanism: dp_sgd``),
    ``count`` steps: every cluster participant with its own plan, the edge's own without; each
    participant's accountant (``ClusterClient.dp_history``) takes the steps it ran."""
    from ecogen.federated import example_dp  # the accountant library loads only where DP is on
    from ecogen.split.dp_sgd import ExampleDpBatches, StackedDpSgd

    cfg = strategy.cfg
    plans = [
        example_dp.plan(cfg, int(c.data.labelled.sum()), count) if c.over_links else None for c in clients
    ]
    priors = [class_prior(c.data.y, base_vit(chain.template).cfg.num_classes) for c in clients]
    span = (r / cfg.rounds, (r + 1) / cfg.rounds)  # this round's share of the client lr schedule
    module = StackedDpSgd(
        chain, strategy.client, list(seeds), priors, count, span, strategy.gradient_term, plans
    )
    data = ExampleDpBatches([c.data for c in clients], strategy.client, list(seeds), count, plans)
    make_trainer(accelerator, max_epochs=1).fit(module, torch.utils.data.DataLoader(data, batch_size=None))
    chain.cpu()
    for lane, (client, plan) in enumerate(zip(clients, plans, strict=True)):
        load_tunable_state(client.model, chain.state(lane))
        if plan is not None:
            example_dp.spend(client.dp_history, plan, module.steps)
    return module.steps, module.images
