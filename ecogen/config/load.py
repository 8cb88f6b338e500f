"""Reading ``params.yaml`` / ``pipelines.yaml`` and ``--set KEY=VALUE`` overrides.

Every failure becomes a :class:`ConfigError` whose message is one line naming the file and the
dotted key, so the CLI can print it and exit with status 2 before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ecogen.config.params import Params
from ecogen.config.pipelines import Pipeline, Pipelines, Trial, Trials

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration problem, described in one line."""


def describe(err: ValidationError, source: str) -> str:
    """One line: ``source: key.path: message (got value); other.key: ...``."""
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].replace("\n", " ")
        got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {e.get('input')!r})"
        parts.append(f"{key}: {msg}{got}")
    return f"{source}: " + "; ".join(parts)


def read_yaml(path: Path, allow_empty: bool = True) -> dict[str, Any]:
    """The mapping a YAML file holds; an empty file is ``{}``, or refused without ``allow_empty``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        if not allow_empty:
            raise ConfigError(
                f"{path}: empty; it must hold the project's params (the repo's params.yaml is the template)"
            )
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(assignments: Iterable[str]) -> dict[str, Any]:
    """``["hfsl.rounds=3", "data.domains=[identity, invert]"]`` → nested mapping (YAML values)."""
    nested: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is both a value and a section")
        node[parts[-1]] = value
    return nested


def validate(model: type[M], data: Mapping[str, Any], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe(err, source)) from None


def load_params(
    path: Path | str = "params.yaml",
    overrides: Mapping[str, Any] | None = None,
    assignments: Iterable[str] = (),
    profile: Mapping[str, Any] | None = None,
) -> Params:
    """params.yaml, then a pipeline's overrides, then a profile, then ``--set``.  The file is
    validated on its own first (an override must not hide a bad value in it: a section given as
    a list would be replaced, not merged), then the merged result."""
    path = Path(path)
    data = read_yaml(path, allow_empty=False)
    source = str(path)
    validate(Params, data, source)
    if overrides:
        data = deep_merge(data, overrides)
        source += " + pipeline overrides"
    if profile:
        data = deep_merge(data, profile)
        source += " + profile"
    if sets := list(assignments):
        data = deep_merge(data, parse_set(sets))
        source += " + --set"
    return validate(Params, data, source)


def profile_overrides(pipelines: Pipelines, name: str | None) -> dict[str, Any] | None:
    if name is None:
        return None
    if name not in pipelines.profiles:
        known = ", ".join(pipelines.profiles) or "(no profile is defined)"
        raise ConfigError(f"unknown profile {name!r}; defined: {known}")
    return pipelines.profiles[name]


def pipeline_name(pipelines: Pipelines, name: str | None) -> str:
    """``name`` (None: the default pipeline), once it is known to be defined."""
    name = name or pipelines.default
    if name not in pipelines.pipelines:
        raise ConfigError(f"unknown pipeline {name!r}; defined: {', '.join(pipelines.pipelines)}")
    return name


def load_pipelines(path: Path | str = "pipelines.yaml") -> Pipelines:
    path = Path(path)
    return validate(Pipelines, read_yaml(path), str(path))


def expand_trials(params: Params, trials: Trials | None, source: str = "pipelines.yaml") -> list[Trial]:
    """Every (FM draw, row, replicate) of an experiment, draw- then replicate-major (all rows of
    replicate 0 first, so an interrupted experiment still has complete replicates); each row's
    params validated."""
    if trials is None:
        return []
    base = params.model_dump(mode="json")
    out = []
    for draw in range(trials.fm_draws):
        for replicate in range(trials.replicates):
            for row, overrides in trials.rows.items():
                merged = deep_merge(deep_merge(base, overrides), {"replicate": replicate})
                if draw:
                    merged = deep_merge(merged, {"pretrain": {"draw": draw}})
                valid = validate(Params, merged, f"{source}: row {row}")
                out.append(Trial(row=row, replicate=replicate, params=valid, draw=draw))
    return out


def parse_places(items: Iterable[str]) -> dict[str, str]:
    """``["pretrain=gpu", "trials=edge"]`` → ``{"pretrain": "gpu", "trials": "edge"}``."""
    places = {}
    for item in items:
        key, sep, pool = item.partition("=")
        if not sep or not key.strip() or not pool.strip():
            raise ConfigError(f"--place {item!r}: expected STAGE=POOL (or trials=POOL)")
        places[key.strip()] = pool.strip()
    return places


def place(spec: Pipeline, places: Mapping[str, str], source: str) -> Pipeline:
    """``spec`` with its stages (and, under the key ``trials``, its trials) placed on the work
    pools ``places`` names, over what pipelines.yaml says; validated as pipelines.yaml is."""
    if not places:
        return spec
    data = spec.model_dump(mode="json")
    stages = {k: v for k, v in places.items() if k != "trials"}
    data["pools"] = {**data["pools"], **stages}
    if "trials" in places:
        if data["trials"] is None:
            raise ConfigError(f"{source}: --place trials=POOL, but the pipeline has no trials")
        data["trials"]["pool"] = places["trials"]
    return validate(Pipeline, data, f"{source} + --place")


@dataclass(frozen=True)
class RunConfig:
    """One pipeline run's configuration, resolved and validated: what `ecogen run` and a
    deployment's flow run both start from."""

    name: str
    spec: Pipeline
    params: Params
    trials: list[Trial]


def resolve_run(
    root: Path,
    pipeline: str | None,
    profile: str | None = None,
    assignments: Iterable[str] = (),
    params_file: Path | str = "params.yaml",
    pipelines_file: Path | str = "pipelines.yaml",
    places: Mapping[str, str] | None = None,
) -> RunConfig:
    """``root``'s params.yaml and pipelines.yaml as they are now, with the pipeline's overrides,
    the profile and the ``--set`` assignments merged on; ``places`` (stage or ``trials`` → work
    pool) over the pipeline's own; ConfigError in one line otherwise."""
    specs = load_pipelines(root / pipelines_file)
    name = pipeline_name(specs, pipeline)
    spec = place(specs.pipelines[name], places or {}, f"pipeline {name}")
    params = load_params(root / params_file, spec.overrides, assignments, profile_overrides(specs, profile))
    return RunConfig(name, spec, params, expand_trials(params, spec.trials, str(pipelines_file)))
