"""The parent run of a `dvc repro`: its stages find it by the `dvc` process above them."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ecogen.config.params import Params
from ecogen.tracking import repro
from ecogen.tracking.repro import DVC_PIPELINE, INVOCATION, dvc_args, invocation, repro_parent


def test_dvc_args_recognise_the_ways_dvc_is_started() -> None:
    assert dvc_args(["dvc", "repro"]) == ["repro"]
    assert dvc_args(["/venv/bin/python", "/venv/bin/dvc", "repro", "infer"]) == ["repro", "infer"]
    assert dvc_args(["python", "-m", "dvc", "exp", "run"]) == ["exp", "run"]
    assert dvc_args(["/bin/sh", "-c", "ecogen stage hfsl"]) is None
    assert dvc_args(["python", "-m", "pytest", "dvc"]) is None


def test_without_dvc_above_a_stage_is_its_own_invocation() -> None:
    key, command = invocation()
    assert command == "ecogen stage" and key.count(":") == 2


def test_the_stages_of_one_repro_share_a_parent_and_the_next_repro_gets_another(
    params: Params, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repro, "invocation", lambda: ("host:1:1.000", "dvc repro"))
    first = repro_parent(params, project)
    client = MlflowClient()
    client.set_terminated(first, "FINISHED")  # the first stage is done
    assert repro_parent(params, project) == first  # the second stage of the same repro
    run = client.get_run(first)
    assert run.info.status == "RUNNING"
    assert run.data.tags["ecogen.pipeline"] == DVC_PIPELINE and run.data.tags["ecogen.kind"] == "pipeline"
    assert run.data.tags[INVOCATION] == "host:1:1.000"
    assert run.data.tags["mlflow.source.name"] == "dvc repro"
    monkeypatch.setattr(repro, "invocation", lambda: ("host:2:1.000", "dvc repro"))
    assert repro_parent(params, project) != first
