"""What ``pipelines.yaml`` may hold: named pipelines of stages, overrides, schedules, pools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

StageName = Literal["prepare", "pretrain", "finetune", "hfsl", "infer"]
STAGE_ORDER: tuple[StageName, ...] = ("prepare", "pretrain", "finetune", "hfsl", "infer")


class Schedule(BaseModel):
    """Exactly one of a cron expression or an interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = None
    interval_seconds: PositiveInt | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron or interval_seconds")
        return self


class Pipeline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    stages: list[StageName] = Field(default_factory=lambda: list(STAGE_ORDER), min_length=1)
    # Nested mapping merged over params.yaml, e.g. {hfsl: {rounds: 2}}; validated as Params.
    overrides: dict[str, Any] = Field(default_factory=dict)
    schedule: Schedule | None = None
    work_pool: str | None = None  # None: served by `ecogen deploy` in-process

    @model_validator(mode="after")
    def _ordered(self) -> Pipeline:
        order = [STAGE_ORDER.index(s) for s in self.stages]
        if order != sorted(set(order)):
            raise ValueError(f"stages must be distinct and in the order {list(STAGE_ORDER)}")
        return self


class Pipelines(BaseModel):
    """Root of ``pipelines.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str = "default"  # pipeline run when `ecogen run` names none
    pipelines: dict[str, Pipeline] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_exists(self) -> Pipelines:
        if self.default not in self.pipelines:
            raise ValueError(f"default pipeline {self.default!r} is not defined")
        return self
