from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ecogen.config.params import Params, TrackingParams
from ecogen.runtime.environment import quiet_defaults as set_offline_env_defaults
from ecogen.tracking import flatten_params, resolve_tracking_uri


def test_configured_uri_wins_over_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    tracking = TrackingParams(uri="http://configured:5000")
    assert resolve_tracking_uri(tracking, tmp_path) == "http://configured:5000"


def test_env_wins_over_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    assert resolve_tracking_uri(TrackingParams(), tmp_path) == "http://from-env:5000"


def test_default_is_sqlite_in_absolute_project_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = resolve_tracking_uri(TrackingParams(), Path("proj"))
    assert uri == f"sqlite:///{(tmp_path / 'proj' / 'mlflow.db').as_posix()}"


def test_offline_env_defaults_do_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECARBON_LOG_LEVEL", "debug")
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    set_offline_env_defaults()
    assert os.environ["CODECARBON_LOG_LEVEL"] == "debug"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_flatten_params_dotted_keys_and_json_values() -> None:
    flat = flatten_params(Params())
    assert flat["hfsl.rounds"] == str(Params().hfsl.rounds)
    assert flat["tracking.experiment"] == "ecogen"
    assert flat["data.root"] == "null"
    assert flat["energy.enabled"] == "true"
    assert json.loads(flat["data.domains"]) == ["identity", "rotate90", "invert"]
    assert all(isinstance(v, str) for v in flat.values())
