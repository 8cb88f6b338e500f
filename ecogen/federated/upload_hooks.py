"""What may happen to a participant's upload on its way to the edge, as hooks a strategy composes
(:attr:`Strategy.upload_hooks`): a poisoning attacker (:func:`ecogen.federated.faults.attacked`)
and DP noise (:func:`ecogen.federated.privacy.privatize`).  A hook returns the upload changed, or
None where it does not apply; the first that applies is what the edge receives.  The edge's own
participant never uploads over a link, so no hook touches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ecogen.config.params import HfslParams
from ecogen.federated import faults

State = dict[str, Tensor]


@dataclass(frozen=True)
class Upload:
    state: State  # what the participant trained
    start: State  # the edge's modules it started the round from
    participant: int  # its number among the edge's participants (stable across rounds)
    edge_seed: int
    round: int


UploadHook = Callable[[Upload], State | None]


def attacker(cfg: HfslParams) -> UploadHook | None:
    """The first ``cfg.attackers`` participants upload ``cfg.attack``'s poisoned modules."""
    if cfg.attack == "none":
        return None

    def poison(u: Upload) -> State | None:
        return faults.attacked(u.state, u.start, cfg) if u.participant < cfg.attackers else None

    return poison


def dp_noise(cfg: HfslParams) -> UploadHook | None:
    """Every upload clipped and noised so that each participant's uploads over all rounds are
    (``dp_epsilon``, ``dp_delta``)-DP."""
    if cfg.dp != "upload" or not cfg.dp_epsilon:
        return None
    from ecogen.federated import privacy  # the accountant library loads only where DP is on

    sigma = privacy.noise_multiplier(cfg.dp_epsilon, cfg.rounds, cfg.dp_delta)

    def privatize(u: Upload) -> State:
        g = torch.Generator().manual_seed(u.edge_seed * 1_000_003 + u.round * 7919 + u.participant)
        return privacy.privatize(u.state, u.start, cfg.clip_norm, sigma, g)

    return privatize


def upload_hooks(cfg: HfslParams) -> list[UploadHook]:
    """The hooks ``cfg`` switches on, in the order they apply."""
    return [hook for hook in (attacker(cfg), dp_noise(cfg)) if hook is not None]


def received(hooks: list[UploadHook], upload: Upload) -> State:
    """What the edge receives: the first applying hook's change, else the upload as trained."""
    for hook in hooks:
        if (changed := hook(upload)) is not None:
            return changed
    return upload.state
