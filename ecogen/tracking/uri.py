"""Where MLflow records runs: one resolution rule, applied at the entry point.

``tracking.uri`` in params.yaml wins, then ``$MLFLOW_TRACKING_URI``, then a SQLite file in the
project root (MLflow 3's own default is ``<cwd>/mlflow.db``, which moves with the working
directory; pinning it to the project keeps `dvc repro`, `ecogen run` and Prefect workers on one
store).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import mlflow

from ecogen.config import ConfigError
from ecogen.config.params import TrackingParams

log = logging.getLogger("ecogen.tracking")


def resolve_tracking_uri(tracking: TrackingParams, project_root: Path) -> str:
    if tracking.uri:
        return tracking.uri
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return env
    return f"sqlite:///{(project_root.resolve() / 'mlflow.db').as_posix()}"


class TrackingUnreachable(ConfigError):
    """The tracking store cannot be reached: said before any work starts, not after a stage."""


def check_tracking(tracking: TrackingParams, project_root: Path, timeout: float = 5.0) -> str:
    """The resolved URI, once it is known to work: a tracking server answers on ``/health``, a
    SQLite file's folder exists.  Otherwise TrackingUnreachable, naming the (redacted) URI and what
    to do — MLflow itself would retry for minutes and then fail inside the first stage."""
    uri = resolve_tracking_uri(tracking, project_root)
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):  # noqa: S310
                pass
        except urllib.error.HTTPError:  # it answers (perhaps asking for credentials): reachable
            pass
        except (OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingUnreachable(
                f"the MLflow tracking server {redact_uri(uri)} does not answer ({reason}): start it, or "
                "set tracking.uri in params.yaml (or MLFLOW_TRACKING_URI) to one that runs"
            ) from None
    elif scheme == "sqlite" and uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise TrackingUnreachable(
                f"tracking.uri {uri}: the folder {folder} does not exist; create it or fix the URI"
            )
    return uri


LOST = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection")
_gone = threading.Event()  # set once this process found its tracking server gone


def server_gone() -> bool:
    """Whether :func:`tracking_lost` found the tracking server gone in this process: what is
    left to log about the failed run is skipped (each call would retry for ~15 s and fail)."""
    return _gone.is_set()


def tracking_lost(err: BaseException) -> str | None:
    """One line when ``err`` (or what caused it) is the tracking server not answering mid-run:
    it names the server and says how to go on; None for any other error."""
    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    seen: set[int] = set()
    texts = []
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        texts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    # MLflow names the URL it called: a Prefect server's loss is not the tracking server's
    called = any(uri.rstrip("/") in text for text in texts)
    if not called or not any(words in text for text in texts for words in LOST):
        return None
    _gone.set()
    return (
        f"the MLflow tracking server {redact_uri(uri)} stopped answering; the stages that "
        "finished are kept: start it again, then run the same command with --resume"
    )


def use_tracking_uri(tracking: TrackingParams, project_root: Path) -> str:
    """Resolve the URI and make it MLflow's current one; returns it.

    MLflow's model logging (``Model.log``) only reads the process-wide URI, so it has to be set; MLflow also
    exports it as ``MLFLOW_TRACKING_URI`` so subprocesses (e.g. `dvc repro` stages) log to the
    same store.
    """
    uri = resolve_tracking_uri(tracking, project_root)
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    return uri


def artifact_location(uri: str, project_root: Path, experiment: str) -> str | None:
    """Artifact root for a new experiment: ``<project>/mlruns/<experiment>`` for a local store.

    Left to MLflow otherwise: a tracking server decides where its artifacts go.  For a local
    store MLflow would use ``<cwd>/mlruns/<id>``, which differs between entry points.
    """
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
        return (project_root.resolve() / "mlruns" / folder).as_uri()
    return None


SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "token", "secret", "key", "access_key", "sslpassword")


def redact_uri(uri: str) -> str:
    """``uri`` with its password (``user:password@host``) and secret query values as ``***``:
    what may be logged or shown.  A URI without either comes back unchanged."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    query = parse_qsl(parts.query, keep_blank_values=True)
    if password is None and not any(k.lower() in SECRET_QUERY_KEYS for k, _ in query):
        return uri
    netloc = parts.netloc
    if password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    hidden = urlencode([(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in query], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, hidden, parts.fragment))


def has_credentials(uri: str | None) -> bool:
    return bool(uri) and redact_uri(uri) != uri  # type: ignore[arg-type]


def handed_uri(uri: str) -> str | None:
    """``uri`` fit to be handed to a worker as a flow run parameter, where anyone who can read the
    Prefect server can read it: None when it holds credentials (the worker then resolves its own
    ``$MLFLOW_TRACKING_URI``, which is where the secret belongs)."""
    if not has_credentials(uri):
        return uri
    log.warning(
        "the tracking URI holds credentials: not handed to workers; set MLFLOW_TRACKING_URI on them (%s)",
        redact_uri(uri),
    )
    return None
