"""DVC versioning of the prepared data, against real DVC in temporary git repositories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from ecogen.versioning import (
    DataVersionError,
    data_version_from_lock,
    ensure_dvc_repo,
    hash_data,
    version_data,
)

RUNS_GITIGNORE = "/runs/*/*\n!/runs/*/*.dvc\n/dvc-remote\n"


@pytest.fixture(autouse=True)
def _no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


def git_repo(root: Path, gitignore: str = RUNS_GITIGNORE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(gitignore)
    return root


def dvc(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True)


def write_data(data: Path, payload: str) -> Path:
    (data / "domain").mkdir(parents=True, exist_ok=True)
    (data / "meta.json").write_text('{"classes": 10}')
    (data / "domain" / "train.txt").write_text(payload)
    return data


def dvc_file_md5(data: Path) -> str:
    content = yaml.safe_load(data.with_name(data.name + ".dvc").read_text())
    return content["outs"][0]["md5"]


def in_remote(root: Path, md5: str) -> bool:
    return (root / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def git_ignored(root: Path, path: Path) -> bool:
    return subprocess.run(["git", "-C", str(root), "check-ignore", "-q", str(path)]).returncode == 0


def test_ensure_dvc_repo_in_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = git_repo(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)  # the remote path must not depend on the current directory
    ensure_dvc_repo(root)
    with Repo(str(root)) as repo:
        assert repo.scm.__class__.__name__ != "NoSCM"
        assert repo.config["core"]["analytics"] is False
        assert repo.config["core"]["remote"] == "local"
    config = (root / ".dvc" / "config").read_text()
    assert "url = ../dvc-remote" in config

    ensure_dvc_repo(root)  # idempotent
    assert (root / ".dvc" / "config").read_text() == config


def test_ensure_dvc_repo_keeps_an_existing_default_remote(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "proj")
    dvc(root, "init", "-q")
    dvc(root, "remote", "add", "-d", "shared", "/srv/dvc")
    ensure_dvc_repo(root)
    with Repo(str(root)) as repo:
        assert repo.config["core"]["remote"] == "shared"
        assert "local" not in repo.config["remote"]
        assert repo.config["core"]["analytics"] is False


def test_ensure_dvc_repo_without_git(tmp_path: Path) -> None:
    ensure_dvc_repo(tmp_path)
    assert "no_scm = True" in (tmp_path / ".dvc" / "config").read_text()


def test_version_data_tracks_content(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "proj")
    data = write_data(root / "runs" / "quick" / "data", "v1")

    predicted = hash_data(root, data)
    assert not data.with_name("data.dvc").exists()  # hashing alone writes nothing
    first = version_data(root, data)
    assert first == predicted
    assert first.endswith(".dir") and first == dvc_file_md5(data)
    assert in_remote(root, first)
    assert git_ignored(root, data) and not git_ignored(root, data.with_name("data.dvc"))

    assert version_data(root, data) == first  # same bytes, same version

    write_data(data, "v2")
    second = version_data(root, data)
    assert second != first and second == dvc_file_md5(data)
    assert in_remote(root, first) and in_remote(root, second)


def test_version_data_outside_git(tmp_path: Path) -> None:
    data = write_data(tmp_path / "runs" / "quick" / "data", "v1")
    assert version_data(tmp_path, data) == dvc_file_md5(data)


def test_ignored_dvc_file_gives_actionable_error(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "proj", gitignore="/runs\n")
    data = write_data(root / "runs" / "quick" / "data", "v1")
    with pytest.raises(DataVersionError, match=r"'/runs/\*/\*' and '!/runs/\*/\*.dvc'"):
        version_data(root, data)


def test_data_version_from_lock_missing(tmp_path: Path) -> None:
    assert data_version_from_lock(tmp_path) is None
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  train:\n    cmd: x\n")
    assert data_version_from_lock(tmp_path) is None


@pytest.mark.slow
def test_data_version_from_lock_after_repro(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "proj", gitignore="/dvc-remote\n")
    ensure_dvc_repo(root)
    (root / "make_data.py").write_text(
        "from pathlib import Path\n"
        "Path('data/d').mkdir(parents=True, exist_ok=True)\n"
        "Path('data/d/x.txt').write_text('prepared')\n"
    )
    stage = {"cmd": f"{sys.executable} make_data.py", "deps": ["make_data.py"], "outs": ["data"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prepare": stage}}))
    # The CLI in the repo's folder: DVC's Python API collects stages relative to the current dir.
    dvc(root, "repro", "-q")
    version = data_version_from_lock(root)
    assert version is not None and version.endswith(".dir")
    assert hash_data(root, root / "data") == version

    # content addressing: the same bytes versioned by `ecogen run` get the same version
    other = git_repo(tmp_path / "other")
    copy = other / "runs" / "p" / "data"
    (copy / "d").mkdir(parents=True)
    (copy / "d" / "x.txt").write_text("prepared")
    assert version_data(other, copy) == version


def test_version_data_in_a_copy_of_a_git_project_without_its_git(tmp_path: Path) -> None:
    """A git project's tracked .dvc/config (no ``no_scm``) copied without ``.git``, e.g. to a GPU agent."""
    source = git_repo(tmp_path / "source")
    ensure_dvc_repo(source)
    assert "no_scm" not in (source / ".dvc" / "config").read_text()
    copy = tmp_path / "copy"
    (copy / ".dvc").mkdir(parents=True)
    (copy / ".dvc" / "config").write_text((source / ".dvc" / "config").read_text())
    data = write_data(copy / "runs" / "quick" / "data", "v1")
    assert version_data(copy, data) == dvc_file_md5(data) == hash_data(copy, data)
    assert "no_scm" not in (copy / ".dvc" / "config").read_text()  # the tracked config stays as it was
