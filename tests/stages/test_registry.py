"""The stage registry: every stage name resolves to its function, imported only when used."""

import subprocess
import sys
from pathlib import Path

from ecogen.config.pipelines import STAGE_ORDER
from ecogen.stages.registry import CLOUD_STAGES, EDGE_STAGES, cloud_stage, edge_stage

ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_resolves_to_the_function_of_its_module() -> None:
    assert set(CLOUD_STAGES) | set(EDGE_STAGES) == set(STAGE_ORDER)
    assert not set(CLOUD_STAGES) & set(EDGE_STAGES)
    for name in STAGE_ORDER:
        fn = cloud_stage(name) if name in CLOUD_STAGES else edge_stage(name)
        assert callable(fn) and fn.__module__ == f"ecogen.stages.{name}", (name, fn)


def test_prepare_and_pretrain_start_without_the_peft_library() -> None:
    code = (
        "import sys, ecogen.pipeline\n"
        "from ecogen.stages.registry import cloud_stage\n"
        "cloud_stage('prepare'); cloud_stage('pretrain')\n"
        "assert 'peft' not in sys.modules, 'peft imported'\n"
        "cloud_stage('hfsl')\n"
        "assert 'peft' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
