from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from ecogen.config.params import Params
from ecogen.runtime.environment import DEFAULTS as OFFLINE_ENV_DEFAULTS
from ecogen.workspace import Workspace


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project root whose default store (sqlite:///<root>/mlflow.db) this module shares.

    One store per module: creating an MLflow SQLite database (migrations) takes seconds.
    MLflow exports the URI it is given as MLFLOW_TRACKING_URI; both are put back afterwards.
    """
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for key, value in OFFLINE_ENV_DEFAULTS.items():
            mp.setenv(key, value)
        yield root
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def params() -> Params:
    return Params.model_validate({"tracking": {"experiment": "ecogen-test"}})


@pytest.fixture
def workspace(project: Path, request: pytest.FixtureRequest) -> Workspace:
    return Workspace(root=project / "runs" / request.node.name)
