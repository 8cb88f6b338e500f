"""Names that a folder of one-file plugins registers: a module's file name is its name; and names
that a module's registry dict declares.

Strategies (``federated/strategies/``) and image sources (``data/sources/``) are registered this
way: adding one is adding a file.  Block allocation rules (``split/allocation.py``, ``RULES``) and
HFSL drivers (``federated/drivers.py``, ``DRIVERS``) are a dict each: adding one is an entry.
Listing them imports none of them, and a plugin's declared constants and a registry's keys are
read from its file (:func:`plugin_constant`, :func:`registry_keys`), so configuration validates
against them without importing algorithm code, or torch: the process's first torch import must
come after the entry point's defaults (``MKL_CBWR``, :mod:`ecogen.runtime.environment`) or runs
stop being bit-for-bit repeatable.
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
    return ast.literal_eval(_assigned(ROOT / folder / f"{name}.py", constant))


def registry_keys(module: str, registry: str) -> list[str]:
    """The keys of the dict ``registry = {"name": ..., ...}`` at the top level of ``module`` (a
    path relative to the ``ecogen`` package, without ``.py``), read without importing it."""
    value = _assigned(ROOT / f"{module}.py", registry)
    if not isinstance(value, ast.Dict):
        raise ValueError(f"ecogen/{module}.py: {registry} is not a dict")
    return [ast.literal_eval(k) for k in value.keys if k is not None]


def _assigned(path: Path, constant: str) -> ast.expr:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == constant:
            return value
    raise ValueError(f"{path} does not define {constant}")
