"""The prepared data under DVC: one local directory remote, the directory md5 as data version.

The data version is DVC's md5 of the directory as a whole (``<hash>.dir``), the same value the
``.dvc`` file (for ``ecogen run``) or ``dvc.lock`` (for ``dvc repro``) records, so an MLflow run
can be traced to the exact bytes it used and ``dvc pull``/``dvc checkout`` brings them back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from dvc.repo import Repo

REMOTE_NAME = "local"
REMOTE_DIR = "dvc-remote"  # relative to the project root


class DataVersionError(RuntimeError):
    """Versioning the data failed; the message says what to change."""


def _git_root(path: Path) -> Path | None:
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def _import_dvc() -> None:
    """Import DVC, without the log handlers of its own that its import adds (on stdout): its lines
    go through the root logger as every other library's do, once, instead of twice."""
    import dvc.repo  # noqa: F401

    dvc_logger = logging.getLogger("dvc")
    for handler in list(dvc_logger.handlers):
        dvc_logger.removeHandler(handler)


def _open(root: Path) -> Repo:
    """The project's DVC repo; outside git without SCM, also when ``.dvc/config`` came from a git
    checkout (an exported copy, an archive, a machine the tree was copied to without ``.git``).
    DVC is imported here, on first use: its import is ~0.3 s of every command's start otherwise."""
    _import_dvc()
    from dvc.repo import Repo

    if _git_root(root) is None:
        return Repo(str(root), config={"core": {"no_scm": True}})
    return Repo(str(root))


def ensure_dvc_repo(project_root: Path) -> None:
    """``dvc init`` (``--no-scm`` outside git, ``--subdir`` below a git root) if ``.dvc/`` is missing;
    then analytics off and, if no default remote exists, ``local`` → ``<project_root>/dvc-remote``.

    Inside git, ``dvc init`` stages ``.dvc/config``, ``.dvc/.gitignore`` and ``.dvcignore``
    (DVC's own behaviour); commit them.  The remote URL is stored relative to ``.dvc/`` so a clone
    works anywhere.
    """
    root = project_root.resolve()
    if not (root / ".dvc").is_dir():
        _import_dvc()
        from dvc.repo import Repo

        git_root = _git_root(root)
        Repo.init(str(root), no_scm=git_root is None, subdir=git_root not in (None, root)).close()
    with _open(root) as repo:
        core = repo.config["core"]
        needs_remote = not core.get("remote")
        if core.get("analytics") is False and not needs_remote:
            return
        with repo.config.edit("repo") as conf:
            conf["core"]["analytics"] = False
            if needs_remote:
                # DVC rewrites a relative path as relative to the config file, reading it
                # relative to the current directory: hand it one from here.
                conf["remote"].setdefault(REMOTE_NAME, {"url": os.path.relpath(root / REMOTE_DIR)})
                conf["core"]["remote"] = REMOTE_NAME


def version_data(project_root: Path, data_dir: Path) -> str:
    """``dvc add`` + ``dvc push`` the prepared data folder; returns its md5 (``<hash>.dir``).

    Writes ``<data_dir>.dvc`` beside the folder.  In git, that file must not be git-ignored
    (DVC refuses), while the folder itself may be.
    """
    root = project_root.resolve()
    data = data_dir.resolve()
    if not data.is_dir():
        raise DataVersionError(f"{data_dir}: no such data directory")
    if root not in data.parents:
        raise DataVersionError(f"{data_dir} is not inside the project {project_root}")
    ensure_dvc_repo(root)
    from dvc.dvcfile import FileIsGitIgnored

    with _open(root) as repo:
        repo.scm_context.quiet = True  # no "To track the changes with git, run: ..." on stdout
        try:
            stages = repo.add(str(data))
        except FileIsGitIgnored as exc:
            rel = data.relative_to(root).as_posix()
            raise DataVersionError(
                f"{exc}. DVC needs {rel}.dvc tracked by git while {rel}/ stays ignored; for runs/ use "
                "the .gitignore lines '/runs/*/*' and '!/runs/*/*.dvc' instead of '/runs'"
            ) from exc
        out = stages[0].outs[0]
        version = out.hash_info.value
        repo.push(targets=[str(Path(stages[0].path))])
    if not version:
        raise DataVersionError(f"DVC recorded no md5 for {data_dir}")
    return str(version)


def hash_data(project_root: Path, data_dir: Path) -> str:
    """The md5 that ``dvc add`` or ``dvc repro`` would record for ``data_dir``, computed without
    adding, caching or pushing.  For the prepare stage under `dvc repro`: its ``dvc.lock``
    entry is written only after the stage has finished."""
    root = project_root.resolve()
    ensure_dvc_repo(root)
    from dvc_data.hashfile.build import build

    with _open(root) as repo:
        _, _, obj = build(
            repo.cache.local, str(data_dir.resolve()), repo.fs, "md5", dry_run=True, ignore=repo.dvcignore
        )
    return str(obj.hash_info.value)


def data_version_from_lock(project_root: Path, stage: str = "prepare", out: str = "data") -> str | None:
    """The md5 that ``dvc.lock`` records for ``out`` of ``stage``; None when there is none yet."""
    lock = project_root / "dvc.lock"
    if not lock.is_file():
        return None
    content = yaml.safe_load(lock.read_text()) or {}
    outs = (content.get("stages") or {}).get(stage, {}).get("outs") or []
    target = Path(out).as_posix().rstrip("/")
    for entry in outs:
        if Path(entry.get("path", "")).as_posix().rstrip("/") == target:
            return entry.get("md5")
    return None
