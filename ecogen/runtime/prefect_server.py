"""A Prefect API server that lives exactly as long as the ``ecogen run`` that started it.

With no ``PREFECT_API_URL``, Prefect starts a temporary server of its own; a run ended by
SIGTERM or SIGKILL left that server listening until killed by hand.  ``ecogen run`` therefore
starts the server itself (``prefect server start`` on a free port of 127.0.0.1, as a child
process), points ``PREFECT_API_URL`` at it, and stops it when the run ends.  On Linux the child
also asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so even a
``kill -9`` of the run takes the server with it.  With ``PREFECT_API_URL`` already set (a
server of your own, a work pool's), nothing is started.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

PR_SET_PDEATHSIG = 1

logger = logging.getLogger("ecogen.prefect")


class ServerError(RuntimeError):
    """The server did not come up; the message holds the end of its log."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with suppress(OSError, AttributeError):  # not Linux: the run still stops it on any normal exit
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 (local URL)
            return r.status == 200
    except OSError:
        return False


@contextmanager
def prefect_server(log_file: Path, timeout: float = 120.0) -> Iterator[Callable[[], str]]:
    """A server that runs while the body does (see the module docstring).

    Yields ``ready``: the server boots while the body goes on (importing torch, MLflow and the
    flows takes about as long as the server's start), and ``ready()`` waits until it answers and
    returns its API URL.  ``PREFECT_API_URL`` points at it from the start, so Prefect, imported
    meanwhile, talks to it.  ServerError from ``ready()`` when it does not come up.
    """
    if os.environ.get("PREFECT_API_URL"):
        url = os.environ["PREFECT_API_URL"]
        yield lambda: url
        return
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}/api"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    logger.info("starting a Prefect server for this run on %s (its log: %s)", url, log_file)
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
    start = time.monotonic()

    def ready() -> str:
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() - start > timeout:
                tail = log_file.read_text(errors="replace")[-1500:]
                raise ServerError(f"the Prefect server did not start (log {log_file}):\n{tail}")
            time.sleep(0.25)
        return url

    os.environ["PREFECT_API_URL"] = url
    try:
        yield ready
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
