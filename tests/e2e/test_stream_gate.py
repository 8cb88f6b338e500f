"""The stream's gate under faults, through `ecogen run stream` in a fresh project (MLflow on SQLite):
a run that fails leaves the served models as they were and takes no increment; a corrupted
increment's challenger is registered, rejected, and the champion alias does not move."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_support import make_project, offline_env, sh, sqlite_uri
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
SETS = [
    "--set=pretrain.epochs=2",
    "--set=peft.epochs=3",
    "--set=hfsl.rounds=2",
    "--set=stream.warm_rounds=3",
    "--set=data.public_pool=2000",
    "--set=model.dim=32",
    "--set=model.depth=2",
    "--set=model.heads=2",
    "--set=data.domains=[identity, invert]",
]
DOMAINS = ["identity", "invert"]


def _ecogen(project: Path, *args: str, patch: str | None = None, check: bool = True) -> str:
    cmd = [sys.executable, str(HERE / "stream_patched.py"), patch] if patch else ["ecogen"]
    return sh([*cmd, *args], project, offline_env(project), timeout=400, check=check).stdout


def _registry(client: MlflowClient) -> dict[str, tuple[int, int]]:
    """Registered model → (versions, champion version)."""
    out = {}
    for name in ["stream.fm", *(f"stream.edge-{d}" for d in DOMAINS)]:
        versions = client.search_model_versions(f"name = '{name}'")
        out[name] = (len(versions), int(client.get_model_version_by_alias(name, "champion").version))
    return out


def test_a_failed_run_and_a_worse_challenger_leave_the_champion(tmp_path: Path, offline_process_env: None):
    project = make_project(tmp_path / "project", git=False)
    _ecogen(project, "run", "stream", *SETS)
    client = MlflowClient(sqlite_uri(project))
    first = _registry(client)
    assert first == {name: (1, 1) for name in first}

    failed = sh(
        [sys.executable, str(HERE / "stream_patched.py"), "fail-hfsl", "run", "stream", *SETS],
        project,
        offline_env(project),
        timeout=400,
        check=False,
    )
    assert failed.returncode != 0 and "hfsl broke" in failed.stdout
    assert _registry(client) == first  # nothing registered, nothing moved

    out = _ecogen(project, "run", "stream", *SETS, patch="corrupt-labels")
    assert "increment 1 of 6" in out  # the failed run took none in
    # the closing summary says what came in, from what it started and what the gate decided
    assert "stream: increment 1 taken in, started from stream.fm@v1, stream.edge-identity@v1" in out
    assert "drift (threshold 0.75): edge-identity " in out
    assert "gate: edge-identity version 2 rejected, the champion stays" in out
    assert _registry(client) == {"stream.fm": (1, 1), **{f"stream.edge-{d}": (2, 1) for d in DOMAINS}}
    for domain in DOMAINS:
        v2 = client.get_model_version(f"stream.edge-{domain}", "2")
        assert v2.tags["ecogen.increment"] == "1"
        assert v2.tags["ecogen.gate"].startswith("rejected: not better on the newest increment")
        assert "ecogen.promoted" not in v2.tags
        decision = json.loads(
            (project / "runs" / "stream" / "artifacts" / "gate" / f"{domain}.json").read_text()
        )
        assert decision["promote"] is False and decision["increment"] == 1
        m = decision["metrics"]
        assert m["challenger_newest"] < m["champion_newest"]
