"""The served models in the registry: versions from logged models, the champion alias with its
reasons and history, rollback, and a version's files fetched back."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ecogen.config.params import Params
from ecogen.tracking import registry
from ecogen.tracking.runs import tracking_client


@pytest.fixture(scope="module")
def client(project: Path, params: Params) -> MlflowClient:
    return tracking_client(params, project)[0]


def _version(client: MlflowClient, tmp_path: Path, name: str, payload: str) -> str:
    exp = client.get_experiment_by_name("ecogen-test")
    assert exp is not None
    model = client.create_logged_model(exp.experiment_id, name="edge-identity-hfsl")
    files = tmp_path / payload
    (files / "extra").mkdir(parents=True)
    (files / "extra" / "tunable.pt").write_text(payload)
    client.log_model_artifacts(model.model_id, str(files))
    run = client.create_run(exp.experiment_id)
    return str(registry.register(client, name, model.model_id, run.info.run_id, {"k": payload}).version)


def test_champion_moves_with_reasons_and_rolls_back(client: MlflowClient, tmp_path: Path):
    name = "stream.edge-identity"
    assert registry.prefix("stream", None) == "stream" and registry.prefix("stream", "cpu") == "stream-cpu"
    assert registry.champion(client, name) is None
    v1, v2, v3 = (_version(client, tmp_path, name, f"v{i}") for i in (1, 2, 3))
    assert registry.champion(client, name) is None  # registered, not served
    registry.promote(client, name, v1, "first")
    registry.promote(client, name, v3, "better")
    champion = registry.champion(client, name)
    assert champion is not None and str(champion.version) == v3
    assert client.get_model_version(name, v3).tags[registry.PROMOTED].endswith(": better")
    assert "replaced by 3: better" in client.get_model_version(name, v1).tags[registry.DEMOTED]
    assert registry.PROMOTED not in client.get_model_version(name, v2).tags  # never served

    assert registry.rollback(client, name, "bad outputs") == v1
    assert str(registry.champion(client, name).version) == v1  # type: ignore[union-attr]
    assert "rolled back from: bad outputs" in client.get_model_version(name, v3).tags[registry.DEMOTED]
    with pytest.raises(registry.RegistryError, match="first champion: nothing to roll back to"):
        registry.rollback(client, name, "again")
    with pytest.raises(registry.RegistryError, match="is the champion already"):
        registry.promote(client, name, v1, "same")
    with pytest.raises(registry.RegistryError, match="has no version 9"):
        registry.promote(client, name, 9, "missing")

    fetched = registry.fetch_file(client.get_model_version(name, v2), "tunable.pt", tmp_path / "got" / "t.pt")
    assert fetched.read_text() == "v2"
    with pytest.raises(registry.RegistryError, match="holds no fm.pt"):
        registry.fetch_file(client.get_model_version(name, v2), "fm.pt", tmp_path / "fm.pt")
