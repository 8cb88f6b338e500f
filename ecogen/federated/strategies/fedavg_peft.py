"""Fed-PETuning: FedAvg of the PEFT modules, every client holding the whole model (no split)."""

from ecogen.federated.strategies.base import Strategy


class FedAvgPeft(Strategy):
    title = "FedAvg of PEFT modules"
    split = False


STRATEGY = FedAvgPeft
