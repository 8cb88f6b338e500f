"""Pseudo-labels from the FM's feature space (``hfsl.feature_labels``).

Every unlabelled image takes the vote of its ``k`` nearest labelled images (cosine similarity of
the FM encoder's pooled features, the vector the classifier head pools) and keeps it only where the
vote is sure — at least ``min_confidence`` of the ``k`` votes agree — and within its class's
quota: each class may keep at most ``keep × N / classes`` of the ``N`` unlabelled images, its most
confident first.  The quota makes it *class-balanced*: a class the FM separates well cannot flood
the set.  The filter is hard: a kept image trains as if it were labelled, the rest stay unlabelled.

Why both: on baselines' data and FM (draw 0), the vote is right on 74 % of the unlabelled images;
a quota alone (no confidence floor) fills the hard classes (shirt, coat, pullover) with unsure
votes and its kept labels are only 73–76 % right, while votes that 9 of 10 neighbours agree on
cover 45 % and are 93 % right (``python -m benchmarks.feature_labels``, docs/ssl-ceiling.md).

Unlike FixMatch's pseudo-labels, these come from the frozen FM once, before the rounds, not from the
model being trained: they do not drift with it, and the model's confirmation bias does not feed
them.  In a cluster the images never leave the devices: the edge broadcasts its labelled images'
features (its bank, ``n × dim`` floats) and each cluster votes with it and its own labelled images.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from ecogen.config.params import HfslParams
from ecogen.data.prepared import Split, SplitSource, to_float
from ecogen.models.vit import ViT
from ecogen.runtime.backends import computing


@torch.no_grad()
def pooled_features(encoder: ViT, x: Tensor, batch_size: int = 512) -> Tensor:
    """uint8 ``(N, C, H, W)`` → ``(N, dim)`` unit vectors: the encoder's final norm of its tokens,
    averaged (what :class:`~ecogen.models.vit.Head` pools), L2-normalised for cosine votes."""
    out = []
    with computing():
        for i in range(0, len(x), batch_size):
            h = encoder.embedding(to_float(x[i : i + batch_size]))
            for block in encoder.blocks:
                h = block(h)
            out.append(encoder.head.norm(h).mean(dim=1))
    feats = torch.cat(out) if out else x.new_zeros((0, encoder.cfg.dim), dtype=torch.float32)
    return F.normalize(feats, dim=1)


def knn_vote(bank: Tensor, bank_y: Tensor, queries: Tensor, k: int, classes: int) -> tuple[Tensor, Tensor]:
    """The label of each query row by majority of its ``k`` most cosine-similar bank rows, and the
    share of the ``k`` votes it won (its confidence, in (0, 1]).  Ties go to the lower class."""
    if len(bank) == 0:
        raise ValueError("feature pseudo-labels need a labelled bank to vote with")
    k = min(k, len(bank))
    nearest = (queries @ bank.T).topk(k, dim=1).indices  # (Q, k)
    votes = F.one_hot(bank_y[nearest], classes).sum(dim=1)  # (Q, classes)
    top = votes.max(dim=1)
    return top.indices, top.values.float() / k


def balanced_keep(
    labels: Tensor, confidence: Tensor, keep: float, classes: int, min_confidence: float = 0.0
) -> Tensor:
    """Boolean mask of the kept rows: those at ``min_confidence`` or above, per class its most
    confident up to ``floor(keep × N / classes)`` (N = all rows), so no class holds more than its
    share."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    quota = int(keep * len(labels) / classes)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(classes):
        rows = torch.nonzero((labels == c) & (confidence >= min_confidence)).flatten()
        # stable sort: equal confidence keeps the earlier row (deterministic)
        order = torch.sort(confidence[rows], descending=True, stable=True).indices
        mask[rows[order[:quota]]] = True
    return mask


def feature_labelled(
    split: Split, encoder: ViT, bank: Tensor, bank_y: Tensor, keep: float, k: int, min_confidence: float = 0.0
) -> Split:
    """``split`` with its unlabelled images pseudo-labelled where kept (:func:`balanced_keep`).
    The vote's bank is ``bank``/``bank_y`` (features, labels) plus the split's own labelled images."""
    classes = encoder.cfg.num_classes
    labelled = split.labelled
    unl = torch.nonzero(~labelled).flatten()
    if len(unl) == 0 or keep == 0.0:
        return split
    own = pooled_features(encoder, split.x[labelled])
    feats = pooled_features(encoder, split.x[unl])
    labels, conf = knn_vote(torch.cat([bank, own]), torch.cat([bank_y, split.y[labelled]]), feats, k, classes)
    kept = balanced_keep(labels, conf, keep, classes, min_confidence)
    y = split.y.clone()
    y[unl[kept]] = labels[kept]
    return Split(split.x, y, held=split.held_labels)


class FeatureLabelled:
    """A :class:`~ecogen.data.prepared.SplitSource` whose unlabelled images come pseudo-labelled by
    ``relabel`` (a :func:`feature_labelled`), computed on first read and kept (labels only; the
    images are read from ``source`` at every load, as before)."""

    def __init__(self, source: SplitSource, relabel: Callable[[Split], Split]) -> None:
        self.source, self.relabel = source, relabel
        self._y: Tensor | None = None

    def __len__(self) -> int:
        return len(self.source)

    def load(self) -> Split:
        split = self.source.load()
        if self._y is None:
            self._y = self.relabel(split).y
        return Split(split.x, self._y, held=split.held_labels)

    def labels(self) -> Tensor:
        return self.load().y if self._y is None else self._y


def feature_labelled_all(
    participants: Sequence[SplitSource], encoder: ViT, edge_set: Split | None, cfg: HfslParams
) -> list[SplitSource]:
    """Every participant as a :class:`FeatureLabelled` source voting with the features of
    ``edge_set``'s labelled images (the edge's broadcast bank; none: only its own labels)."""
    if edge_set is None:
        bank = torch.zeros((0, encoder.cfg.dim))
        bank_y = torch.zeros(0, dtype=torch.long)
    else:
        labelled = edge_set.labelled
        bank, bank_y = pooled_features(encoder, edge_set.x[labelled]), edge_set.y[labelled]
    keep, k, floor = cfg.feature_labels, cfg.feature_labels_k, cfg.feature_labels_confidence
    # each participant its own encoder copy: threads never share one module's train/eval state
    return [
        FeatureLabelled(
            p,
            partial(
                feature_labelled,
                encoder=copy.deepcopy(encoder).eval(),
                bank=bank,
                bank_y=bank_y,
                keep=keep,
                k=k,
                min_confidence=floor,
            ),
        )
        for p in participants
    ]
