"""How a round's participants run their local training: ``hfsl.driver``.

* ``serial`` — each participant trains on its own (:meth:`ClusterClient.fit`), a few at a time in
  threads of this process, each with its share of the cores.  The reference.
* ``batched`` — participants that share a frozen backbone and a step count train as one
  computation (:class:`~ecogen.split.stacked.StackedChain`): every cluster of every edge in one
  forward and backward pass per step, their tunable modules stacked.  Same batches, same views,
  same losses, same bytes through the same channels; the results agree with ``serial`` to float
  rounding.  Participants with different frozen weights (edges whose LoRA A is kept frozen as
  each edge trained it) or different step counts (``local_steps: null`` over unequal data) form
  separate groups.

Both return, per participant in order, (edge name, client steps, images trained on).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from ecogen.federated.roles import ClusterClient, EdgeServer
from ecogen.federated.strategies.base import Strategy
from ecogen.peft.edge import base_vit
from ecogen.peft.tunable import load_tunable_state
from ecogen.runtime.environment import share_cores, use_cores
from ecogen.split.allocation import allocate_blocks
from ecogen.split.semi_supervised import FixMatchBatches
from ecogen.split.stacked import StackedChain
from ecogen.split.stacked_semi_supervised import StackedBatches, StackedSemiSupervised
from ecogen.training.pseudo_label import class_prior
from ecogen.training.trainer import make_trainer

Task = tuple[EdgeServer, int, ClusterClient]  # (edge, participant's number (EdgeServer.number), participant)
Done = tuple[str, int, int]  # (edge name, steps, images)


def seed_of(edge: EdgeServer, r: int, k: int) -> int:
    # participant k's seed in round r; an edge that draws its rounds' clusters may have thousands,
    # so its rounds lie a (prime) million apart, and no two (round, cluster) pairs share a seed
    return edge.seed + (1_000_003 if edge.numbers else 1000) * r + k


def span_of(r: int, rounds: int) -> tuple[float, float]:
    return (r / rounds, (r + 1) / rounds)  # this round's share of the client lr schedule


def fit_serial(
    tasks: list[Task], strategy: Strategy, accelerator: str, r: int, pool: ThreadPoolExecutor, workers: int
) -> list[Done]:
    steps, rounds = strategy.local_steps(), strategy.cfg.rounds

    def one(task: Task) -> Done:
        use_cores(share)
        edge, k, client = task
        seed = seed_of(edge, r, k)
        return (edge.name, *client.fit(strategy, edge.channel, accelerator, seed, steps, span_of(r, rounds)))

    # no oversubscription: each parallel participant gets its share of torch's threads
    with share_cores(workers) as share:
        return list(pool.map(one, tasks))


def _steps_of(client: ClusterClient, strategy: Strategy, steps: int | None, seed: int) -> int:
    if steps is not None:
        return steps
    t = strategy.client
    sampler = FixMatchBatches(client.data.labelled, t.batch_size, t.unlabelled_ratio, seed, t.semi_supervised)
    return len(sampler) * strategy.cfg.local_epochs


def _frozen(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if not p.requires_grad] + list(model.buffers())


def _same_backbone(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_frozen(a), _frozen(b), strict=True))


def fit_batched(tasks: list[Task], strategy: Strategy, accelerator: str, r: int) -> list[Done]:
    cfg = strategy.cfg
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
        members = [tasks[i] for i in group]
        template = members[0][2].model
        names = [n for n, p in template.named_parameters() if p.requires_grad]
        depth = len(base_vit(template).blocks)
        chain = StackedChain(
            template,
            allocate_blocks(depth, cfg.devices_per_cluster, cfg.allocation),
            [e.channel if strategy.split and c.over_links else None for e, _, c in members],
            names,
            [c.crossings() if c.hosts else None for _, _, c in members],
        )
        num_classes = base_vit(template).cfg.num_classes
        for lane, (_, _, client) in enumerate(members):
            chain.load(lane, dict(client.model.named_parameters()))
        module = StackedSemiSupervised(
            chain,
            strategy.client,
            [seeds[i] for i in group],
            [class_prior(c.data.y, num_classes) for _, _, c in members],
            counts[group[0]],
            span_of(r, cfg.rounds),
            strategy.gradient_term,
        )
        data = StackedBatches(
            [c.data for _, _, c in members], strategy.client, [seeds[i] for i in group], counts[group[0]]
        )
        make_trainer(accelerator, max_epochs=1).fit(
            module, torch.utils.data.DataLoader(data, batch_size=None)
        )
        chain.cpu()
        for lane, i in enumerate(group):
            edge, _, client = tasks[i]
            load_tunable_state(client.model, chain.state(lane))
            done[i] = (edge.name, module.steps, module.images[lane])
    return done
