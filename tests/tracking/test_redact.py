"""Credentials in tracking.uri never reach MLflow params or a placed flow run's parameters."""

import pytest

from ecogen.config.params import Params
from ecogen.tracking.runs import flatten_params
from ecogen.tracking.uri import handed_uri, has_credentials, redact_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://user:s3cret@db.example:5432/mlflow", "postgresql://user:***@db.example:5432/mlflow"),
        ("https://host/api?token=abc&x=1", "https://host/api?token=***&x=1"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////work/mlflow.db", "sqlite:////work/mlflow.db"),
        ("mysql://reader@db/mlflow", "mysql://reader@db/mlflow"),
    ],
)
def test_passwords_and_secret_query_values_are_hidden(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert has_credentials(uri) == (uri != shown)


def test_neither_the_logged_params_nor_a_deployment_hold_the_password() -> None:
    params = Params.model_validate({"tracking": {"uri": "postgresql://user:s3cret@db/mlflow"}})
    assert flatten_params(params)["tracking.uri"] == "postgresql://user:***@db/mlflow"
    assert "s3cret" not in str(flatten_params(params))
    assert handed_uri("postgresql://user:s3cret@db/mlflow") is None
    assert handed_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
