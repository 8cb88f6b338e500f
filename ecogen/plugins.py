"""Names that a folder of one-file plugins registers: a module's file name is its name.

Strategies (``federated/strategies/``) and image sources (``data/sources/``) are registered this
way: adding one is adding a file.  Listing them imports none of them, and a plugin's declared
constants are read from its file (:func:`plugin_constant`), so configuration validates against
them without importing algorithm code, or torch: the process's first torch import must come after
the entry point's defaults (``MKL_CBWR``, :mod:`ecogen.runtime.environment`) or runs stop being
bit-for-bit repeatable.
"""

from __future__ import annotations

import ast
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


def plugin_constant(folder: str, name: str, constant: str) -> object:
    """The literal value of ``constant = ...`` at the top level of plugin ``name``'s file, read
    without importing it (``ast.literal_eval``)."""
    path = ROOT / folder / f"{name}.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == constant:
            return ast.literal_eval(value)
    raise ValueError(f"{path} does not define {constant} (a literal)")
