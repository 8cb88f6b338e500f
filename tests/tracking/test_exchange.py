"""A pipeline folder carried between two folders through a real MLflow artifact store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ecogen.config import ConfigError
from ecogen.config.params import Params
from ecogen.runtime.placement import check_placeable
from ecogen.tracking import exchange
from ecogen.tracking.runs import start_pipeline_run
from ecogen.tracking.uri import use_tracking_uri


@pytest.fixture
def run_id(project: Path, params: Params) -> str:
    use_tracking_uri(params.tracking, project)
    return start_pipeline_run(params, "exchange", project)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_what_one_side_sends_the_other_receives_once(run_id: str, tmp_path: Path) -> None:
    parent, worker = tmp_path / "parent", tmp_path / "worker"
    _write(parent, {"data/a.pt": b"a" * 1000, "artifacts/fm.pt": b"fm", "metrics/prepare.json": b"{}"})
    _write(parent, {".ecogen-run.json": b"{}", ".stage-keys.json": b"{}", "emissions/emissions.csv": b"x"})

    assert exchange.send(run_id, parent, "inputs") == ["artifacts/fm.pt", "data/a.pt", "metrics/prepare.json"]
    assert exchange.send(run_id, parent, "again") == []  # nothing the store lacks
    assert exchange.receive(run_id, worker, "inputs") == [
        "artifacts/fm.pt",
        "data/a.pt",
        "metrics/prepare.json",
    ]
    assert _tree(worker) == {k: v for k, v in _tree(parent).items() if k[0] != "." and "emissions" not in k}
    assert exchange.receive(run_id, worker, "again") == []

    # the worker writes one new file and changes one: only those travel back
    _write(worker, {"artifacts/fm.pt": b"fm2", "metrics/pretrain.json": b'{"loss": 1}'})
    assert exchange.send(run_id, worker, "outputs") == ["artifacts/fm.pt", "metrics/pretrain.json"]
    assert exchange.receive(run_id, parent, "outputs") == ["artifacts/fm.pt", "metrics/pretrain.json"]
    assert (parent / "artifacts" / "fm.pt").read_bytes() == b"fm2"
    assert (parent / ".ecogen-run.json").read_bytes() == b"{}"  # local files stay as they were

    files = [a.path for a in MlflowClient().list_artifacts(run_id, exchange.INDEX)]
    assert len(files) == 2  # one index per send that sent something


def test_a_file_changed_under_the_index_is_refused(run_id: str, tmp_path: Path) -> None:
    parent, worker = tmp_path / "parent", tmp_path / "worker"
    _write(parent, {"artifacts/fm.pt": b"one"})
    exchange.send(run_id, parent, "inputs")
    # another writer replaces the file without an index naming it
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "fm.pt").write_bytes(b"two")
    MlflowClient().log_artifact(run_id, str(tmp_path / "other" / "fm.pt"), f"{exchange.FILES}/artifacts")
    with pytest.raises(RuntimeError, match="changed while it was received"):
        exchange.receive(run_id, worker, "inputs")


def test_placement_needs_a_prefect_server_and_a_tracking_server() -> None:
    check_placeable("sqlite:///x/mlflow.db", None, [])  # nothing placed: anything goes
    check_placeable("http://127.0.0.1:5000", "http://127.0.0.1:4200/api", ["edge"])
    with pytest.raises(ConfigError, match="PREFECT_API_URL"):
        check_placeable("http://127.0.0.1:5000", None, ["edge"])
    with pytest.raises(ConfigError, match="share no disk"):
        check_placeable("sqlite:///x/mlflow.db", "http://127.0.0.1:4200/api", ["edge"])
