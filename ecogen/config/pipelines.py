"""What ``pipelines.yaml`` may hold: named pipelines of stages, overrides, schedules, pools."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from ecogen.config.params import Params

StageName = Literal["prepare", "pretrain", "finetune", "hfsl", "relay", "gate", "infer"]
NO_PROFILE = "none"  # what runs made without a profile are tagged, and `ecogen report --profile` names them
DVC_PIPELINE = "dvc"  # the pipeline tag of what `dvc repro` runs (dvc.yaml on the project root)

STAGE_ORDER: tuple[StageName, ...] = ("prepare", "pretrain", "finetune", "hfsl", "relay", "gate", "infer")
# The params sections a stage's outputs are made with: a trial row may not change those of a stage
# its trials share (they would run on outputs made otherwise: a LoRA rank the edges' modules do not have)
MADE_WITH: dict[StageName, tuple[str, ...]] = {
    "prepare": ("data",),
    "pretrain": ("model", "pretrain"),
    "finetune": ("peft",),
}

# A pipeline or profile name becomes a folder (runs/NAME/) and an MLflow tag: a plain word, never
# a path (no '/', '..', leading '.' or '-'), at most 64 characters
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def unsafe_names(names: list[str]) -> list[str]:
    return [n for n in names if not SAFE_NAME.fullmatch(n)]


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


class Trials(BaseModel):
    """An experiment: the trailing ``stages`` of a pipeline rerun once per row and replicate.

    The pipeline's other stages run once and are shared (same data, FM and edge modules); each
    row's overrides are merged over the pipeline's params, and ``replicate`` is set to 0…N-1.
    Every (row, replicate) is its own MLflow stage run, tagged ``ecogen.row`` / ``ecogen.replicate``.
    ``parallel`` trials run at a time (threads of one process sharing the cores; ``ecogen.runtime.parallel``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: list[StageName] = Field(min_length=1)
    replicates: PositiveInt = 1
    # Foundation models drawn (``pretrain.draw`` 0…N-1): draw k > 0 pre-trains and fine-tunes its
    # own FM in ``runs/<pipeline>@fm<k>/`` on the same data, and every row × replicate runs on each
    fm_draws: PositiveInt = 1
    rows: dict[str, dict[str, Any]] = Field(min_length=1)  # row name → nested overrides
    parallel: PositiveInt = 1
    # A Prefect work pool: each trial runs as flow runs of the `ecogen-placed/<pool>` deployment
    # on that pool's workers (``parallel`` of them in flight); None: in the parent's process.
    pool: str | None = None

    @model_validator(mode="after")
    def _row_names(self) -> Trials:
        if bad := [r for r in self.rows if not r or not all(c.isalnum() or c in "-_." for c in r)]:
            raise ValueError(f"row names may hold letters, digits, '-', '_' and '.' only: {bad}")
        return self


class Trial(BaseModel):
    """One (row, replicate) of an experiment, with its fully merged and validated params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row: str
    replicate: int
    params: Params
    draw: int = 0  # the FM it starts from (``pretrain.draw``)

    @property
    def name(self) -> str:
        return f"{self.row}-fm{self.draw}-r{self.replicate}" if self.draw else f"{self.row}-r{self.replicate}"


class Pipeline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    stages: list[StageName] = Field(default_factory=lambda: list(STAGE_ORDER), min_length=1)
    # Nested mapping merged over params.yaml, e.g. {hfsl: {rounds: 2}}; validated as Params.
    overrides: dict[str, Any] = Field(default_factory=dict)
    schedule: Schedule | None = None
    work_pool: str | None = None  # None: served by `ecogen deploy` in-process
    # Stage → the Prefect work pool whose workers run it (its own flow run of the
    # `ecogen-placed/<pool>` deployment, inputs and outputs through the MLflow artifact store);
    # a stage not named here runs in the parent flow's process.  E.g. {pretrain: gpu, hfsl: edge}.
    pools: dict[StageName, str] = Field(default_factory=dict)
    trials: Trials | None = None  # an experiment over rows × replicates (see Trials)
    # The knowledge-flow loop: these trailing stages run `relay.cycles` times, each cycle starting
    # from the FM the previous relay produced (e.g. [finetune, hfsl, relay]).
    cycle: list[StageName] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Pipeline:
        order = [STAGE_ORDER.index(s) for s in self.stages]
        if order != sorted(set(order)):
            raise ValueError(f"stages must be distinct and in the order {list(STAGE_ORDER)}")
        if self.trials is not None:
            tail = self.stages[len(self.stages) - len(self.trials.stages) :]
            if list(self.trials.stages) != tail:
                raise ValueError(f"trials.stages must be the last stages of the pipeline, here {tail}")
            self._rows_keep_shared_stages()
        if self.cycle is not None:
            tail = self.stages[len(self.stages) - len(self.cycle) :]
            if not self.cycle or list(self.cycle) != tail:
                raise ValueError(f"cycle must be the last stages of the pipeline, here {tail}")
            if self.trials is not None:
                raise ValueError("a pipeline has either trials or a cycle, not both")
        self._check_pools()
        return self

    def _rows_keep_shared_stages(self) -> None:
        assert self.trials is not None
        shared = self.stages[: len(self.stages) - len(self.trials.stages)]
        for row, overrides in self.trials.rows.items():
            if clash := [f"{sec} ({s})" for s in shared for sec in MADE_WITH.get(s, ()) if sec in overrides]:
                raise ValueError(
                    f"row {row} overrides {', '.join(clash)}, which the trials' shared stages are made "
                    "with: give it a pipeline of its own (its overrides) or put the stage in trials.stages"
                )

    def _check_pools(self) -> None:
        named = [*self.pools.values(), *([self.trials.pool] if self.trials and self.trials.pool else [])]
        if bad := unsafe_names(named):
            raise ValueError(f"work pool names are letters, digits, '-' and '_': not {bad}")
        if missing := [s for s in self.pools if s not in self.stages]:
            raise ValueError(f"pools names stages this pipeline does not run: {missing}")
        if "prepare" in self.pools:
            # `dvc add` + `dvc push` of the prepared data need the project's DVC repo and remote
            raise ValueError(
                "prepare is not placed: it runs where the project is, whose DVC versions the data"
            )
        if self.trials is not None and (trial := [s for s in self.pools if s in self.trials.stages]):
            raise ValueError(f"trial stages {trial} are placed with trials.pool, not pools")

    def pool_of(self, stage: StageName) -> str | None:
        """The work pool that runs ``stage`` (trial stages: ``trials.pool``); None: the parent."""
        if self.trials is not None and stage in self.trials.stages:
            return self.trials.pool
        return self.pools.get(stage)

    @property
    def placed_pools(self) -> list[str]:
        """Every work pool this pipeline places work on, in stage order."""
        return list(dict.fromkeys(p for s in self.stages if (p := self.pool_of(s)) is not None))

    @property
    def repeated_stages(self) -> list[StageName]:
        """The trailing stages run per trial or per cycle (none in a plain pipeline)."""
        return list(self.trials.stages) if self.trials else list(self.cycle or [])

    @property
    def shared_stages(self) -> list[StageName]:
        """The stages that run once."""
        return self.stages[: len(self.stages) - len(self.repeated_stages)]


class Pipelines(BaseModel):
    """Root of ``pipelines.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str = "default"  # pipeline run when `ecogen run` names none
    pipelines: dict[str, Pipeline] = Field(min_length=1)
    # Named overlays chosen at run time (`ecogen run P --profile NAME`), merged over the
    # pipeline's overrides: e.g. a reduced CPU profile of a pipeline whose own size is for a GPU.
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_exists(self) -> Pipelines:
        for kind, names in (("pipeline", list(self.pipelines)), ("profile", list(self.profiles))):
            if bad := unsafe_names(names):
                raise ValueError(
                    f"{kind} names are folder names under runs/: letters, digits, '-' and '_' only, "
                    f"starting with a letter or digit, at most 64 characters; not {bad}"
                )
        if self.default not in self.pipelines:
            raise ValueError(f"default pipeline {self.default!r} is not defined")
        if NO_PROFILE in self.profiles:
            raise ValueError(f"profile name {NO_PROFILE!r} is reserved: it means no profile (as written)")
        if DVC_PIPELINE in self.pipelines:
            raise ValueError(f"pipeline name {DVC_PIPELINE!r} is reserved: it tags the runs of `dvc repro`")
        return self
