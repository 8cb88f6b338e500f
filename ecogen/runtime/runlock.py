"""One pipeline run per project at a time.

Two runs in one project would write the same ``runs/<pipeline>/`` folders, the same DVC cache and
each other's reusable stages (a run's infer once read another run's HFSL modules).  A run holds
an exclusive OS lock on ``runs/.lock`` (``flock``: the kernel drops it when the process ends,
however it ends, so a killed run never leaves a stale lock) and writes who holds it there, so a
second run refuses with a message naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path("runs") / ".lock"
_held: dict[Path, int] = {}  # lock files this process holds, and how deeply (the CLI, then the flow)


class ProjectBusy(RuntimeError):
    """Another process holds the project's run lock; the message names it."""


def holder(project_root: Path) -> dict[str, object]:
    """What the lock file says about its holder (empty when nothing readable is there)."""
    try:
        return json.loads((project_root / LOCK).read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def project_lock(project_root: Path, pipeline: str, kind: str = "pipeline") -> Iterator[None]:
    """Held while the body runs; :class:`ProjectBusy` at once if another process holds it.  A
    process that holds it already (``ecogen run`` takes it, then its flow) enters again.  ``kind``
    and ``pipeline`` name the holder: ``pipeline quick``, or ``stage hfsl`` for ``ecogen stage``."""
    path = (project_root / LOCK).resolve()
    if _held.get(path):
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = holder(project_root)
        since = time.strftime("%H:%M:%S", time.localtime(float(str(who.get("since", 0)))))
        raise ProjectBusy(
            f"this project is busy: {who.get('kind', 'pipeline')} {who.get('pipeline', '?')} is running "
            f"in process {who.get('pid', '?')} on {who.get('host', '?')} since {since}; wait for it to "
            "finish or stop it (Ctrl-C, or kill that process), then run again"
        ) from None
    try:
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "kind": kind,
            "pipeline": pipeline,
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        _held[path] = 1
        yield
    finally:
        _held.pop(path, None)
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
