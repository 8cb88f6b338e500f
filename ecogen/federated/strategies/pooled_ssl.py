"""The central ceiling of the unlabelled data: one learner holds the federation's labels *and* the
clusters' unlabelled images, at the federation's client compute, PEFT modules.  With
``hfsl.unlabelled_weight`` (FixMatch / FlexMatch pseudo-labels) or ``hfsl.feature_labels`` (kNN
votes in the FM's feature space) it says how much the unlabelled 90 % can give with this FM and
these modules when federation and splitting cost nothing; with neither it is ``pooled_labels``."""

from ecogen.federated.strategies.pooled_labels import PooledLabels


class PooledSsl(PooledLabels):
    title = "Central, the same labels + the unlabelled images (PEFT)"
    unlabelled = True


STRATEGY = PooledSsl
