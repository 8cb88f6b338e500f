"""Drift on what an edge sees: can the FM's features tell the newest images from the first ones?

A classifier two-sample test (Lopez-Paz & Oquab, 2017, arXiv 1610.06545): a logistic regression
(scikit-learn) learns to tell the increment before's client images from the newest increment's,
from the FM encoder's token features (:func:`~ecogen.relay.routing.style_features`, which keep
where things sit, so a rotation shows).  Its cross-validated ROC AUC is the drift score: about
0.5 when the two are alike, towards 1 when they differ.  No label is needed, and the images never
leave the edge: only the score does.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from ecogen.data.prepared import to_float
from ecogen.models.vit import ViT
from ecogen.relay.routing import style_features

FOLDS = 5


def sample(x: Tensor, n: int, seed: int) -> Tensor:
    """At most ``n`` rows of ``x``, drawn without replacement (seeded)."""
    if len(x) <= n:
        return x
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx]


def drift_score(encoder: ViT, reference: Tensor, new: Tensor, seed: int) -> float:
    """Cross-validated ROC AUC of telling ``new`` uint8 images from ``reference`` ones."""
    if min(len(reference), len(new)) < FOLDS:
        raise ValueError(
            f"the drift test needs at least {FOLDS} images a side, got {len(reference)} and {len(new)}"
        )
    feats = style_features(encoder, to_float(torch.cat([reference, new]))).numpy()
    y = np.r_[np.zeros(len(reference)), np.ones(len(new))]
    # PCA first: a few thousand token features against a few hundred images per side
    components = min(32, len(y) // 2, feats.shape[1])
    clf = make_pipeline(
        StandardScaler(), PCA(components, random_state=seed), LogisticRegression(max_iter=2000)
    )
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, feats, y, cv=folds, scoring="roc_auc").mean())
