"""Stages and trials placed on work pools: what pipelines.yaml may say (ecogen/config/pipelines.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ecogen.config import ConfigError, Pipeline
from ecogen.config.load import parse_places, place

STAGES = ["prepare", "pretrain", "finetune", "hfsl", "infer"]


def _pipeline(**spec: Any) -> Pipeline:
    return Pipeline.model_validate({"stages": STAGES, **spec})


def test_a_pipeline_without_pools_places_nothing() -> None:
    spec = _pipeline()
    assert spec.placed_pools == []
    assert all(spec.pool_of(s) is None for s in STAGES)


def test_pools_name_each_stage_s_pool_in_stage_order() -> None:
    spec = _pipeline(pools={"infer": "edge", "pretrain": "gpu", "hfsl": "edge"})
    assert [spec.pool_of(s) for s in STAGES] == [None, "gpu", None, "edge", "edge"]
    assert spec.placed_pools == ["gpu", "edge"]


def test_trials_go_to_the_trials_pool() -> None:
    trials = {"stages": ["hfsl"], "rows": {"a": {}}, "pool": "many"}
    spec = _pipeline(stages=STAGES[:4], pools={"pretrain": "gpu"}, trials=trials)
    assert spec.pool_of("hfsl") == "many"
    assert spec.placed_pools == ["gpu", "many"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"pools": {"relay": "edge"}}, "does not run"),
        ({"pools": {"prepare": "edge"}}, "prepare is not placed"),
        ({"pools": {"pretrain": "../gpu"}}, "work pool names"),
        ({"pools": {"training": "gpu"}}, "pools.training"),
        ({"stages": STAGES[:4], "pools": {"hfsl": "edge"}, "trials": {"stages": ["hfsl"], "rows": {"a": {}}}},
         "trials.pool"),
        ({"stages": STAGES[:4], "trials": {"stages": ["hfsl"], "rows": {"a": {}}, "pool": "a b"}},
         "work pool names"),
    ],
)  # fmt: skip
def test_bad_placements_are_refused_with_the_reason(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _pipeline(**spec)


def test_places_go_over_the_pipeline_s_pools() -> None:
    trials = {"stages": ["hfsl"], "rows": {"a": {}}}
    spec = _pipeline(stages=STAGES[:4], pools={"pretrain": "gpu"}, trials=trials)
    placed = place(spec, parse_places(["pretrain=big", "finetune=edge", "trials=many"]), "pipeline p")
    assert [placed.pool_of(s) for s in STAGES[:4]] == [None, "big", "edge", "many"]
    assert place(spec, {}, "pipeline p") is spec
    with pytest.raises(ConfigError, match=r"pipeline p \+ --place: .*hfsl.*trials.pool"):
        place(spec, {"hfsl": "edge"}, "pipeline p")
    with pytest.raises(ConfigError, match="expected STAGE=POOL"):
        parse_places(["pretrain:gpu"])
