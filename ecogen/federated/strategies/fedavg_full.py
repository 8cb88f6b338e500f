"""FedAvg of the whole model: every weight trains on every client, every weight crosses the links."""

from ecogen.federated.strategies.base import Strategy


class FedAvgFull(Strategy):
    title = "FedAvg, full model"
    split = False
    full_model = True


STRATEGY = FedAvgFull
