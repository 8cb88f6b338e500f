"""What goes wrong in a federation, simulated and seeded: devices that drop out, clusters that miss
the round's deadline, and clusters that upload poisoned modules.

* Device dropout (``hfsl.device_dropout`` = p): every device of every cluster is offline in a round
  with probability p, independently.  A cluster's chain needs all its devices, so a cluster with
  an offline device sits the round out: it receives nothing, trains nothing, uploads nothing, and
  the edge aggregates over the clusters that took part (weights renormalised over them).  The
  edge's own participant is the edge server and does not drop out.
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


def present(seed: int, r: int, devices: list[int], cfg: HfslParams) -> list[bool]:
    """Which participants take part in round ``r``; ``devices[k]`` is participant k's device count
    (0: the edge's own participant, which does not drop out)."""
    if cfg.device_dropout == 0:
        return [True] * len(devices)
    g = _generator(seed, r, 1)
    return [n == 0 or bool((torch.rand(n, generator=g) >= cfg.device_dropout).all()) for n in devices]


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
