"""The house rules a newcomer relies on: no import cycle in ``ecogen``, short functions, and
plugins (strategies, image sources) registered by their files alone, and registries (allocation
rules, drivers) by their dicts alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import ecogen
from ecogen.config.params import DataParams, HfslParams
from ecogen.data.sources import source_names
from ecogen.federated.drivers import DRIVERS
from ecogen.federated.strategies import method_names
from ecogen.plugins import SOURCES, plugin_constant, plugin_names, registry_keys
from ecogen.split.allocation import RULES

PACKAGE = Path(ecogen.__file__).parent
MAX_LINES = 60


def test_no_import_cycle():
    graph = grimp.build_graph("ecogen", cache_dir=None)  # type-checking imports included
    cycles = [
        graph.find_shortest_chain(importer=imported, imported=module)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert not cycles, f"import cycles (each chain leads back to its first importer): {cycles}"


def _long_functions() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_LINES:
                    found.add(f"{path.relative_to(PACKAGE).as_posix()}:{node.name}")
    return found


def test_functions_stay_short():
    long = sorted(_long_functions())
    assert not long, f"functions over {MAX_LINES} lines (split them): {long}"


def test_plugins_are_their_files(tmp_path: Path):
    assert {"fashion_mnist", "digits", "imagefolder"} == set(source_names())
    assert {"ecogen", "fedavg_full", "splitfed"} <= set(method_names()) and "base" not in method_names()
    (tmp_path / "mine.py").write_text("import torch\n\nSIDE: int | None = 16\n")
    (tmp_path / "_private.py").write_text("")
    assert plugin_names(str(tmp_path)) == ["mine"]  # an absolute folder: pathlib joins it as is
    assert plugin_constant(str(tmp_path), "mine", "SIDE") == 16
    assert plugin_constant(SOURCES, "digits", "SIDE") == 8
    assert plugin_constant(SOURCES, "imagefolder", "SIDE") is None
    with pytest.raises(ValueError, match="does not define CHANNELS"):
        plugin_constant(SOURCES, "digits", "CHANNELS")


def test_configuration_does_not_import_torch():
    """MKL reads MKL_CBWR at torch's first call: an entry point sets it after parsing its config,
    so validating one must not load torch (a run would stop being repeatable bit for bit)."""
    code = (
        "import sys\n"
        "from ecogen.config.params import Params\n"
        "Params.model_validate({'data': {'source': 'digits'}, 'hfsl': {'method': 'fedprox', "
        "'proximal_mu': 1}})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_knows_plugins_by_name():
    with pytest.raises(ValueError, match="unknown data.source 'cifar'; known: digits, fashion_mnist"):
        DataParams(source="cifar")
    with pytest.raises(ValueError, match="unknown HFSL method 'fedsgd'"):
        HfslParams(method="fedsgd")
    with pytest.raises(ValueError, match="unknown hfsl.driver 'async'; known: serial, batched"):
        HfslParams(driver="async")
    with pytest.raises(ValueError, match="unknown hfsl.allocation 'back'; known: balanced, front"):
        HfslParams(allocation="back")


def test_registries_are_their_dicts(tmp_path: Path):
    """Config reads a registry's keys from its file: the keys are the dict's, whatever it holds."""
    assert registry_keys("split/allocation", "RULES") == list(RULES)
    assert registry_keys("federated/drivers", "DRIVERS") == list(DRIVERS)
    (tmp_path / "mine.py").write_text("def f(): ...\n\nTABLE: dict = {'a': f, 'b': print}\nLIST = [1]\n")
    assert registry_keys(str(tmp_path / "mine"), "TABLE") == ["a", "b"]
    with pytest.raises(ValueError, match="LIST is not a dict"):
        registry_keys(str(tmp_path / "mine"), "LIST")
