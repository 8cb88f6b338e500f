"""ecogen/runlock.py: one run per project; the holder is named; a dead holder frees it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecogen.runlock import ProjectBusy, holder, project_lock

HOLD = """
import sys, time
from pathlib import Path
from ecogen.runlock import project_lock
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
