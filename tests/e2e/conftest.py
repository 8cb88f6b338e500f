"""Fixtures of the end-to-end tests (helpers live in e2e_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import LEAKY_ENV


@pytest.fixture(scope="module")
def offline_process_env() -> Iterator[None]:
    """This (pytest) process too: no telemetry, no inherited tracking URI; restored afterwards."""
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        for key in LEAKY_ENV:
            mp.delenv(key, raising=False)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mp.setenv("DO_NOT_TRACK", "1")
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # then the env is put back
