"""ecogen/runtime/runlock.py: one run per project; the holder is named; a dead holder frees it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecogen.runtime.runlock import ProjectBusy, holder, project_lock

HOLD = """
import sys, time
from pathlib import Path
from ecogen.runtime.runlock import project_lock
with project_lock(Path(sys.argv[1]), "other"):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold(root: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_with_the_holders_pid_and_pipeline(tmp_path: Path) -> None:
    other = _hold(tmp_path)
    try:
        with pytest.raises(ProjectBusy, match=rf"pipeline other is running in process {other.pid}"):
            with project_lock(tmp_path, "mine"):
                pass
        assert holder(tmp_path)["pipeline"] == "other"
    finally:
        other.kill()
        other.wait()


def test_a_killed_holder_frees_the_project_and_a_holder_may_enter_again(tmp_path: Path) -> None:
    other = _hold(tmp_path)
    other.kill()  # SIGKILL: no clean-up ran
    other.wait()
    time.sleep(0.1)
    with project_lock(tmp_path, "mine"), project_lock(tmp_path, "mine"):  # the CLI, then its flow
        assert holder(tmp_path)["pipeline"] == "mine"
    assert holder(tmp_path) == {}


def test_ecogen_stage_takes_the_lock_too(tmp_path: Path) -> None:
    """`ecogen stage` (what `dvc repro` runs) writes the project's data/ and DVC cache: it is
    refused while a run holds the project, and names itself as a stage when it holds it."""
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "params.yaml", tmp_path / "params.yaml")
    other = _hold(tmp_path)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ecogen.cli", "stage", "prepare"], cwd=tmp_path, capture_output=True,
            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        assert out.returncode == 2, out.stderr[-2000:]
        assert f"pipeline other is running in process {other.pid}" in out.stderr
        assert not (tmp_path / "data").exists()
    finally:
        other.kill()
        other.wait()
    time.sleep(0.1)
    with project_lock(tmp_path, "hfsl", kind="stage"):
        assert holder(tmp_path)["kind"] == "stage"
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; from ecogen.runtime.runlock import "
             "project_lock; project_lock(Path(sys.argv[1]), 'x').__enter__()", str(tmp_path)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        assert "stage hfsl is running" in probe.stderr
