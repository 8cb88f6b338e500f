"""HFSL methods as strategies: one file per method, each defining ``STRATEGY``, a subclass of
:class:`~ecogen.federated.strategies.base.Strategy`.

A method's name is its file's name (``hfsl.method: fedprox`` → ``fedprox.py``), so adding a method
is adding one file.  Listing the names imports nothing (configuration validation stays cheap);
:func:`strategy_for` imports the one a run uses.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ecogen.config.params import HfslParams
    from ecogen.federated.strategies.base import Strategy

_NOT_METHODS = {"base"}


def method_names() -> list[str]:
    """Every HFSL method this installation knows, sorted."""
    here = [str(Path(__file__).parent)]
    return sorted(m.name for m in pkgutil.iter_modules(here) if m.name not in _NOT_METHODS)


def strategy_for(cfg: HfslParams) -> Strategy:
    """The strategy object of ``cfg.method``, configured with ``cfg``."""
    if cfg.method not in method_names():
        raise ValueError(f"unknown HFSL method {cfg.method!r}; known: {method_names()}")
    module = importlib.import_module(f"{__name__}.{cfg.method}")
    return module.STRATEGY(cfg)  # type: ignore[no-any-return]
