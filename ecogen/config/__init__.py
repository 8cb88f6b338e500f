"""Typed configuration: ``params.yaml`` and ``pipelines.yaml`` as pydantic models."""

from ecogen.config.load import (
    ConfigError,
    expand_trials,
    load_params,
    load_pipelines,
    parse_set,
    profile_overrides,
)
from ecogen.config.params import Params
from ecogen.config.pipelines import STAGE_ORDER, Pipeline

__all__ = [
    "STAGE_ORDER",
    "ConfigError",
    "Params",
    "Pipeline",
    "expand_trials",
    "load_params",
    "load_pipelines",
    "parse_set",
    "profile_overrides",
]
