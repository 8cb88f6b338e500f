"""The centralised oracle: one learner trains the whole model on every cluster's images with every
true label — the upper bound the federated methods are measured against."""

from ecogen.federated.strategies.pooled_labels import PooledLabels


class Centralized(PooledLabels):
    title = "Centralized oracle (all labels)"
    full_model = True
    oracle = True


STRATEGY = Centralized
