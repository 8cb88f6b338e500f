"""A pipeline's working folder carried between machines through the MLflow artifact store.

A stage placed on a work pool runs on another machine that shares no disk with the parent: the
parent *sends* the files the stage needs, the worker *receives* them into a folder of its own,
runs the stage there and *sends* what it wrote; the parent then *receives* those.  The store is
the pipeline run's artifacts (``mlflow server --artifacts-destination`` proxies them over HTTP):

* ``workspace/<path>``: the files, at the path they have under ``runs/PIPELINE/``;
* ``workspace-index/<time>-<id>.json``: one index per send, ``{path: md5}`` of the files it sent.

The newest index naming a path says which content is current; a side receives the paths whose
current md5 differs from its own copy, and sends the files whose md5 differs from the current
one, so nothing crosses twice.  Sends and receives of one process are serialised (trials placed
side by side send from their own threads).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

from mlflow import MlflowClient

log = logging.getLogger(__name__)

FILES = "workspace"
INDEX = "workspace-index"
# Not carried: the run marker, reuse keys and the hfsl round checkpoint belong to the machine that
# wrote them; DVC's pointer and ignore file to the project; CodeCarbon's log to the host.
LOCAL_ONLY = (".ecogen-run.json", ".stage-keys.json", ".rounds.pt", ".gitignore", "data.dvc")
LOCAL_DIRS = ("emissions",)

_lock = threading.Lock()
_indexes: dict[tuple[str, str], dict[str, str]] = {}  # (run, index path) → its {path: md5}, as read


def digest(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 (a content fingerprint, not security)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    """``{path relative to root: md5}`` of every file that is carried (see LOCAL_ONLY)."""
    if not root.is_dir():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.name not in LOCAL_ONLY and rel.parts[0] not in LOCAL_DIRS:
            out[rel.as_posix()] = digest(path)
    return out


def current(client: MlflowClient, run_id: str) -> dict[str, str]:
    """``{path: md5}`` of the content the store holds now (the newest index naming each path)."""
    merged: dict[str, str] = {}
    indexes = sorted(a.path for a in client.list_artifacts(run_id, INDEX) if not a.is_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for index in indexes:
            if (run_id, index) not in _indexes:  # an index never changes once written: read it once
                path = Path(client.download_artifacts(run_id, index, tmp))
                _indexes[(run_id, index)] = json.loads(path.read_text())
            merged.update(_indexes[(run_id, index)])
    return merged


def send(run_id: str, root: Path, label: str) -> list[str]:
    """Upload the files under ``root`` whose content the store does not hold yet; returns their paths."""
    client = MlflowClient()
    with _lock:
        held = current(client, run_id)
        mine = snapshot(root)
        changed = {p: md5 for p, md5 in mine.items() if held.get(p) != md5}
        if not changed:
            return []
        for rel in changed:
            folder = Path(FILES, rel).parent.as_posix()
            client.log_artifact(run_id, str(root / rel), folder)
        with tempfile.TemporaryDirectory() as tmp:
            # time first: indexes sort in the order they were sent
            index = Path(tmp) / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
            index.write_text(json.dumps(changed, sort_keys=True))
            client.log_artifact(run_id, str(index), INDEX)
    size = sum((root / p).stat().st_size for p in changed)
    log.info("%s: sent %d files (%.1f MiB) to run %s's artifacts", label, len(changed), size / 2**20, run_id)
    return sorted(changed)


def receive(run_id: str, root: Path, label: str) -> list[str]:
    """Download into ``root`` the files whose current content differs from (or is missing in)
    ``root``; returns their paths."""
    client = MlflowClient()
    with _lock:
        held = current(client, run_id)
        mine = snapshot(root)
        wanted = [p for p, md5 in held.items() if mine.get(p) != md5]
        if not wanted:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            for rel in wanted:
                got = Path(client.download_artifacts(run_id, f"{FILES}/{rel}", tmp))
                if digest(got) != held[rel]:  # written again since the index was read
                    raise RuntimeError(f"{rel} in run {run_id}'s artifacts changed while it was received")
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(got), target)
    size = sum((root / p).stat().st_size for p in wanted)
    log.info(
        "%s: received %d files (%.1f MiB) from run %s's artifacts", label, len(wanted), size / 2**20, run_id
    )
    return sorted(wanted)
