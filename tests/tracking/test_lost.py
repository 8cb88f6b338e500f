"""A tracking server lost mid-run is recognised (one line, naming it), and nothing else is."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from ecogen.tracking import uri as tracking_uri
from ecogen.tracking.uri import server_gone, tracking_lost

SERVER = "http://127.0.0.1:5999"


@pytest.fixture
def server() -> Iterator[None]:
    mlflow.set_tracking_uri(SERVER)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        tracking_uri._gone.clear()


def _mlflow_error(url: str, why: str) -> Exception:
    try:
        try:
            raise ConnectionError(f"HTTPConnectionPool(host='127.0.0.1', port=5999): {why}")
        except ConnectionError as inner:
            raise MlflowException(f"API request to {url}/api/2.0/mlflow/runs/log-batch failed") from inner
    except MlflowException as outer:
        try:
            raise RuntimeError("the stage failed") from outer
        except RuntimeError as top:
            return top


def test_the_tracking_server_gone_is_one_line_naming_it(server: None) -> None:
    assert not server_gone()
    said = tracking_lost(_mlflow_error(SERVER, "Max retries exceeded with url: /api"))
    assert said is not None and SERVER in said and "--resume" in said and "\n" not in said
    assert server_gone()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:4200", "Max retries exceeded"),  # another server (Prefect's): not ours
        (SERVER, "Internal Server Error"),  # it answered: an error, not a lost server
    ],
)
def test_other_failures_are_not_a_lost_server(server: None, url: str, why: str) -> None:
    assert tracking_lost(_mlflow_error(url, why)) is None
    assert not server_gone()


def test_a_local_store_is_never_lost() -> None:
    mlflow.set_tracking_uri("sqlite:////tmp/nowhere/mlflow.db")
    try:
        assert tracking_lost(RuntimeError(f"{SERVER} Connection refused")) is None
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
