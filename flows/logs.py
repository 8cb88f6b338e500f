"""Prefect plumbing the flows share: EcoGen's log lines in the Prefect UI, waiting on a placed run."""

from __future__ import annotations

import logging
import re
import time
from uuid import UUID

from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import get_run_context
from prefect.exceptions import FailedRun, MissingContextError
from prefect.logging.handlers import APILogHandler
from prefect.states import Cancelling, Failed, State

from ecogen.tracking.run_summary import summary_markdown


def _in_a_run(record: logging.LogRecord) -> bool:
    try:
        get_run_context()
    except MissingContextError:  # e.g. the CLI's closing lines, after the flow returned
        return False
    return True


REFUSED = "error: "  # how a run refused at its start says why (one line, nothing started)


def refused(why: Exception) -> State:
    """The state a flow run ends in when its configuration is refused: FAILED, with the reason
    logged in one line.  Prefect's engine would log the reason again with its own traceback as
    the run process exits; that record is dropped (:func:`_not_the_refusal_again`)."""
    logging.getLogger("ecogen.pipeline").error("%s%s", REFUSED, why)
    flows_logger = logging.getLogger("prefect.flow_runs")
    if _not_the_refusal_again not in flows_logger.filters:
        flows_logger.addFilter(_not_the_refusal_again)
    return Failed(message=f"{REFUSED}{why}")


def _not_the_refusal_again(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, FailedRun) and str(exc).startswith(REFUSED))


def log_to_prefect() -> None:
    """EcoGen's own log lines (stage starts, progress, reuse, placement) go to the Logs tab of the
    flow or task run they are written in, as Prefect's own do; the console keeps them too."""
    logger = logging.getLogger("ecogen")
    if any(isinstance(h, APILogHandler) for h in logger.handlers):
        return
    handler = APILogHandler(level=logging.INFO)
    handler.addFilter(_in_a_run)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:  # a worker's process leaves the root logger at WARNING
        logger.setLevel(logging.INFO)


def wait_for(flow_run_id: UUID, poll_s: float = 1.0) -> FlowRun:
    """The flow run once it is final.  If the wait is interrupted (Ctrl-C, SIGTERM, a failed
    sibling), the run is cancelled on its worker rather than left running for nobody."""
    with get_client(sync_client=True) as client:
        try:
            while True:
                run = client.read_flow_run(flow_run_id)
                if run.state is not None and run.state.is_final():
                    return run
                time.sleep(poll_s)
        except BaseException:
            client.set_flow_run_state(flow_run_id, Cancelling(), force=True)
            raise


def publish_summary(run_id: str, pipeline: str) -> None:
    """The closing table and the MLflow run's links as a Markdown artifact of the flow run."""
    key = re.sub(r"[^a-z0-9-]+", "-", f"ecogen-{pipeline}".lower()).strip("-")
    markdown = summary_markdown(run_id)
    create_markdown_artifact(
        markdown, key=key, description=f"EcoGen pipeline {pipeline}: MLflow run {run_id}"
    )
