"""How a participant trains in a round: the part of ``hfsl`` params that client training reads.

The split drivers (serial and batched) and the participant roles receive this, not the whole of
:class:`~ecogen.config.params.HfslParams`: a lever of the client step is one field here (and its
validated param), and what decides whether the unlabelled loss or a separate teacher is on is
said once, by :attr:`ClientTraining.semi_supervised` and :attr:`ClientTraining.separate_teacher`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ecogen.config.params import HfslParams


@dataclass(frozen=True)
class ClientTraining:
    batch_size: int  # labelled images per client batch
    unlabelled_ratio: int  # μ: unlabelled images per labelled image in a batch
    optimizer: Literal["adamw", "sgd"]
    lr: float
    lr_schedule: Literal["constant", "cosine"]
    augment: Literal["weak", "none"]  # the labelled (and teacher) view
    unlabelled_weight: float  # weight of the pseudo-label loss (0: labels only)
    mixup_weight: float  # weight of SemiFL's mix loss on the pseudo-labelled images (0: off)
    mixup_alpha: float  # λ ~ Beta(α, α) of that mix
    unlabelled_view: Literal["strong", "weak", "none"]
    pseudo_labels: Literal["fixed", "aligned", "adaptive", "soft"]
    confidence_threshold: float
    logit_adjustment: float
    teacher: Literal["self", "round_start", "ema"]
    ema_decay: float
    mae_weight: float  # weight of the MAE loss on the unlabelled images through the chain (0: off)

    @classmethod
    def of(cls, cfg: HfslParams) -> ClientTraining:
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})

    @property
    def semi_supervised(self) -> bool:
        """The unlabelled images are trained on (pseudo-labels), not only the labelled ones."""
        return self.unlabelled_weight > 0

    @property
    def uses_unlabelled(self) -> bool:
        """A batch draws unlabelled images: for pseudo-labels, or for the MAE loss (``mae_weight``)."""
        return self.semi_supervised or self.mae_weight > 0

    @property
    def separate_teacher(self) -> bool:
        """Pseudo-labels come from a frozen copy of the segments (round start or EMA), not the
        training model itself."""
        return self.teacher != "self" and self.semi_supervised
