"""Pseudo-labels for one client's unlabelled images, from the end device's weak-view logits.

``fixed`` is FixMatch (Sohn et al., 2020): the argmax where the top probability ≥ τ.  A model
that starts at ~0.75 accuracy is confident mostly on the easy classes, so fixed-τ pseudo-labels
pile onto those and starve the confusable ones.  Two known remedies:

* ``aligned`` — distribution alignment (Berthelot et al., ReMixMatch, arXiv 1911.09785): the
  weak-view probabilities are multiplied by ``prior / running mean of the predictions`` and
  renormalised before the τ cut, so classes the model under-predicts (relative to the client's
  labelled class frequencies) gain confidence.
* ``adaptive`` — class-wise thresholds (Zhang et al., FlexMatch, arXiv 2110.08263): τ_c = τ ·
  β(σ_c / max σ), β(x) = x / (2 − x), σ_c a running rate of confident class-c predictions, so a
  class the model is rarely confident on gets a lower bar.

* ``soft`` — no hard label: the target is the teacher's softmax itself (Hinton et al., 2015,
  arXiv 1503.02531), kept where its top probability ≥ τ (τ = 0: every image).  With the round's
  delivered model as the teacher this distils the federation's model into each client on the
  client's unlabelled images, which holds the client near it in function space against
  label-skew drift (Lee et al., FedNTD, 2022, arXiv 2106.03097).

Running statistics live per client and round (a fresh labeller per local training).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

PseudoLabelMode = Literal["fixed", "aligned", "adaptive", "soft"]


def pseudo_labels(logits: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """FixMatch: (labels, mask), the argmax of softmax and mask = max prob ≥ threshold (float 0/1)."""
    conf, labels = logits.softmax(-1).max(-1)
    return labels, (conf >= threshold).float()


def class_prior(labels: Tensor, num_classes: int) -> Tensor:
    """Laplace-smoothed class frequencies of a client's labelled images (uniform with none)."""
    counts = torch.bincount(labels[labels >= 0], minlength=num_classes).float() + 1.0
    return counts / counts.sum()


def flex_warp(x: Tensor) -> Tensor:
    """FlexMatch's convex mapping β(x) = x / (2 − x) on [0, 1]."""
    return x / (2.0 - x)


class PseudoLabeller:
    def __init__(
        self, mode: PseudoLabelMode, threshold: float, prior: Tensor | None = None, momentum: float = 0.9
    ) -> None:
        self.mode, self.threshold, self.momentum = mode, threshold, momentum
        self.prior = prior
        self.running: Tensor | None = None  # aligned: mean predicted distribution; adaptive: σ

    def _update(self, value: Tensor) -> Tensor:
        value = value.detach()
        if self.running is None:
            self.running = value
        else:
            self.running = self.momentum * self.running.to(value.device) + (1 - self.momentum) * value
        return self.running

    def __call__(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """(labels, mask) for a batch of weak-view logits; mask is float 0/1.  Labels are class
        indices, or (``soft``) class probabilities, as ``F.cross_entropy`` takes either."""
        if self.mode == "fixed":
            return pseudo_labels(logits.detach(), self.threshold)
        probs = logits.detach().float().softmax(-1)
        if self.mode == "soft":
            return probs, (probs.max(-1).values >= self.threshold).float()
        if self.mode == "aligned":
            prior = self.prior if self.prior is not None else torch.full_like(probs[0], 1 / probs.shape[-1])
            ratio = prior.to(probs.device) / self._update(probs.mean(0)).clamp_min(1e-6)
            probs = probs * ratio
            probs = probs / probs.sum(-1, keepdim=True)
        conf, labels = probs.max(-1)
        if self.mode == "adaptive":
            confident = torch.bincount(labels[conf >= self.threshold], minlength=probs.shape[-1]).float()
            sigma = self._update(confident / len(labels))
            scale = flex_warp(sigma / sigma.max()) if sigma.max() > 0 else torch.ones_like(sigma)
            return labels, (conf >= self.threshold * scale[labels]).float()
        return labels, (conf >= self.threshold).float()  # aligned
