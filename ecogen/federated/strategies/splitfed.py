"""SplitFed (Thapa et al., 2022): split clients as in EcoGen, but every weight trains and is averaged."""

from ecogen.federated.strategies.base import Strategy


class SplitFed(Strategy):
    title = "SplitFed (full model)"
    full_model = True


STRATEGY = SplitFed
