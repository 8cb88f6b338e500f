"""EcoGen's HFSL: FedAvg of the tunable PEFT modules over clients that train through their
cluster's device chain (split learning inside a cluster, federated across clusters)."""

from ecogen.federated.strategies.base import Strategy


class EcoGen(Strategy):
    title = "EcoGen (HFSL, PEFT)"


STRATEGY = EcoGen
