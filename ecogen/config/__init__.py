"""Typed configuration: ``params.yaml`` and ``pipelines.yaml`` as pydantic models."""

from ecogen.config.load import ConfigError, load_params, load_pipelines, parse_set
from ecogen.config.params import Params
from ecogen.config.pipelines import STAGE_ORDER, Pipeline, Pipelines, StageName

__all__ = [
    "STAGE_ORDER",
    "ConfigError",
    "Params",
    "Pipeline",
    "Pipelines",
    "StageName",
    "load_params",
    "load_pipelines",
    "parse_set",
]
