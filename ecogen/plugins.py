"""Names that a folder of one-file plugins registers: a module's file name is its name.

Strategies (``federated/strategies/``) and image sources (``data/sources/``) are registered this
way: adding one is adding a file.  Listing them imports none of them, so configuration can validate
against the names without importing algorithm code.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).parent
STRATEGIES = "federated/strategies"  # HFSL methods: hfsl.method
SOURCES = "data/sources"  # image sources: data.source


def plugin_names(folder: str, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The modules in ``folder`` (relative to the ``ecogen`` package), sorted; private ones
    (``_name``) and ``exclude`` left out."""
    found = pkgutil.iter_modules([str(ROOT / folder)])
    return sorted(m.name for m in found if not m.name.startswith("_") and m.name not in exclude)


def plugin(folder: str, name: str) -> ModuleType:
    """The module ``name`` of ``folder``, imported."""
    if name not in plugin_names(folder):
        raise ValueError(f"unknown {name!r} in ecogen/{folder}; known: {', '.join(plugin_names(folder))}")
    return importlib.import_module(f"ecogen.{folder.replace('/', '.')}.{name}")
