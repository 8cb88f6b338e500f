"""HFSL methods as strategies: one file per method, each defining ``STRATEGY``, a subclass of
:class:`~ecogen.federated.strategies.base.Strategy`.

A method's name is its file's name (``hfsl.method: fedprox`` → ``fedprox.py``), so adding a method
is adding one file.  Listing the names imports nothing (configuration validation stays cheap);
:func:`strategy_for` imports the one a run uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecogen.plugins import STRATEGIES, plugin, plugin_names

if TYPE_CHECKING:
    from ecogen.config.params import HfslParams
    from ecogen.federated.strategies.base import Strategy

_NOT_METHODS = frozenset({"base"})


def method_names() -> list[str]:
    """Every HFSL method this installation knows, sorted."""
    return plugin_names(STRATEGIES, _NOT_METHODS)


def strategy_for(cfg: HfslParams) -> Strategy:
    """The strategy object of ``cfg.method``, configured with ``cfg``."""
    return plugin(STRATEGIES, cfg.method).STRATEGY(cfg)  # type: ignore[no-any-return]
