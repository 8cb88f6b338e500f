"""What goes wrong in a federation, simulated and seeded: devices that drop out, clusters that miss
the round's deadline, and clusters that upload poisoned modules.

* Device dropout (``hfsl.device_dropout`` = p): every device of every cluster is offline in a round
  with probability p, independently.  A cluster's chain needs every segment, so what a cluster
  with an offline device does is ``hfsl.dropout_policy``:

  - ``sit_out``: the cluster sits the round out: it receives nothing, trains nothing, uploads
    nothing, and the edge aggregates over the clusters that took part (weights renormalised over
    them);
  - ``hand_over``: the offline device's segment is handed to the nearest device of the chain that
    is online (the one before it first): the edge sends that device the segment's weights, frozen
    and tunable, and it runs both segments, so the activations between them cross no link.  The
    cluster trains as usual and sits out only when all its devices are offline.

  The edge's own participant is the edge server and does not drop out.
* Stragglers (``hfsl.straggler_rate`` = s): a cluster that took part misses the round's upload
  deadline with probability s: it trained and its upload crossed the link (the bytes count), but
  the edge has aggregated without it.
* Attacks (``hfsl.attack``, for the robustness benchmark): the first ``hfsl.attackers`` clusters
  of each edge upload w₀ − a·(w − w₀) (``sign_flip``) or w₀ + a·(w − w₀) (``scale``), a =
  ``hfsl.attack_scale``, instead of what they trained.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecogen.config.params import HfslParams


def _generator(seed: int, r: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + r * 7919 + salt) % (2**63))


def online(seed: int, r: int, devices: list[int], cfg: HfslParams) -> list[list[bool]]:
    """Which devices of each participant are online in round ``r``; ``devices[k]`` is participant
    k's device count (0: the edge's own participant, which does not drop out)."""
    if cfg.device_dropout == 0:
        return [[True] * n for n in devices]
    g = _generator(seed, r, 1)
    return [[bool(v) for v in torch.rand(n, generator=g) >= cfg.device_dropout] for n in devices]


def takes_part(up: list[bool], cfg: HfslParams) -> bool:
    """Whether a participant whose devices are ``up`` trains this round (``hfsl.dropout_policy``)."""
    if not up:  # the edge's own participant
        return True
    return any(up) if cfg.dropout_policy == "hand_over" else all(up)


def present(seed: int, r: int, devices: list[int], cfg: HfslParams) -> list[bool]:
    """Which participants take part in round ``r`` (see :func:`online`)."""
    return [takes_part(up, cfg) for up in online(seed, r, devices, cfg)]


def hosts(up: list[bool]) -> list[int]:
    """The device that runs each segment of a chain whose devices are ``up``: its own when online,
    else the nearest online one, the one before it on a tie.  Needs one device online."""
    if not any(up):
        raise ValueError("no device of the chain is online")
    near = [j for j in range(len(up)) if up[j]]
    return [i if up[i] else min(near, key=lambda j: (abs(j - i), j)) for i in range(len(up))]


def late(seed: int, r: int, count: int, cfg: HfslParams) -> list[bool]:
    """Which of ``count`` participants miss round ``r``'s upload deadline."""
    if cfg.straggler_rate == 0:
        return [False] * count
    return [bool(v) for v in torch.rand(count, generator=_generator(seed, r, 2)) < cfg.straggler_rate]


def attacked(state: dict[str, Tensor], start: dict[str, Tensor], cfg: HfslParams) -> dict[str, Tensor]:
    """What an attacking cluster uploads in place of ``state`` (trained from ``start``)."""
    a = cfg.attack_scale
    if cfg.attack == "sign_flip":
        return {k: start[k] - a * (v - start[k]) for k, v in state.items()}
    if cfg.attack == "scale":
        return {k: start[k] + a * (v - start[k]) for k, v in state.items()}
    return state
