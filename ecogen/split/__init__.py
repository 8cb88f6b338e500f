"""Split learning: link channel with byte accounting, block allocation, the device chain."""

from ecogen.split.allocation import allocate_blocks
from ecogen.split.channel import Activation, ByteLedger, Channel, Gradient, TunableModules

__all__ = ["Activation", "ByteLedger", "Channel", "Gradient", "TunableModules", "allocate_blocks"]
