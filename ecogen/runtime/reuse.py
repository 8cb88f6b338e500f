"""Work not done twice: a pipeline's shared stages reuse what another pipeline already made.

``table3``, ``baselines`` and ``hfsl-study`` start from the same prepare → pretrain → finetune
(their overrides are one YAML anchor).  Each stage that finishes in ``runs/<pipeline>/`` records
a *key* there (``.stage-keys.json``): a digest of the params the stage reads (the same lists as
``dvc.yaml``'s), of its code, and of its upstream stage's key.  Before running a shared stage,
a pipeline looks for the same key in the other pipelines' folders; if one has it, and still holds
the outputs, they are copied instead of recomputed.  A stage about to run forgets its key (and
its downstream stages' keys) first, so a folder being rewritten is never copied from.

An experiment's trials are reused too: a trial's hfsl stage has a key of its own (its params, the
hfsl code, and the key of the pipeline's finetune it starts from), kept under ``hfsl[<trial>]``;
a trial of another pipeline with the same key (``table3``'s ``c6`` and ``baselines``' ``ecogen``
rows are one recipe; so are ``faults``' ``clean`` rows) is copied instead of trained again —
its files, and its metrics with their per-round histories (what the report reads).  What a cycle
runs is its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from functools import cache
from pathlib import Path

from ecogen.config.params import Params
from ecogen.workspace import Workspace

KEYS = ".stage-keys.json"
PACKAGE = Path(__file__).resolve().parents[1]  # ecogen/

# What each reusable stage reads: params (as in dvc.yaml) and code (dvc.yaml's deps in ecogen/,
# plus the configuration and the stage helpers every stage uses)
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("seed", "data", "hfsl.clusters"),
    "pretrain": ("seed", "accelerator", "model", "pretrain"),
    "finetune": ("seed", "accelerator", "peft", "inference.batch_size"),
    "hfsl": ("seed", "accelerator", "peft", "hfsl", "inference.batch_size"),
}
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "prepare": ("data", "stages/prepare.py"),
    "pretrain": ("models", "training", "stages/pretrain.py"),
    "finetune": ("peft", "training", "relay/routing.py", "stages/finetune.py"),
    "hfsl": ("federated", "split", "models", "peft", "training", "stages/hfsl.py"),
}
COMMON_CODE = ("config", "stages/common.py", "stages/registry.py", "stages/result.py")
UPSTREAM = {"pretrain": "prepare", "finetune": "pretrain"}
REUSABLE = ("prepare", "pretrain", "finetune")  # a pipeline's shared stages
TRIAL_REUSABLE = ("hfsl",)  # a trial's stages, on the pipeline's finetune


def outputs(ws: Workspace, stage: str) -> list[Path]:
    """The files and folders a reusable stage writes in ``ws``."""
    metrics = ws.metrics / f"{stage}.json"
    if stage == "prepare":
        return [ws.data, metrics]
    if stage == "pretrain":
        return [ws.fm, ws.plots / "fm_reconstructions.png", metrics]
    if stage == "hfsl":
        return [ws.hfsl_rounds.parent, metrics, *sorted(ws.plots.glob("hfsl_*"))]
    return [ws.artifacts / "edges", metrics]


def _param(params: Params, dotted: str) -> object:
    value: object = params.model_dump(mode="json")
    for part in dotted.split("."):
        value = value[part]  # type: ignore[index]
    return value


@cache
def code_digest(stage: str) -> str:
    h = hashlib.sha256()
    for rel in (*STAGE_CODE[stage], *COMMON_CODE):
        path = PACKAGE / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(PACKAGE).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def stage_key(params: Params, stage: str) -> str:
    """The digest of what ``stage``'s outputs depend on (its params, its code, its upstream's key)."""
    upstream = stage_key(params, UPSTREAM[stage]) if stage in UPSTREAM else ""
    return _digest(params, stage, STAGE_PARAMS[stage], upstream)


def _digest(params: Params, stage: str, names: tuple[str, ...], upstream: str) -> str:
    read = {name: _param(params, name) for name in names}
    text = json.dumps([stage, read, code_digest(stage), upstream], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def trial_key(trial_params: Params, stage: str, workdir: Path) -> str | None:
    """A trial's ``stage`` key: its params and code, on the finetune of the pipeline in
    ``workdir`` (None while that finetune has no key: nothing to match it by)."""
    upstream = _keys(workdir).get("finetune", {}).get("key")
    if upstream is None:
        return None
    return _digest(trial_params, stage, (*STAGE_PARAMS[stage], "replicate"), upstream)  # seeds


def remember_trial(workdir: Path, trial_params: Params, stage: str, trial: str, run_id: str) -> None:
    """A trial's ``stage`` finished (MLflow run ``run_id``): offer it for reuse."""
    if stage in TRIAL_REUSABLE and (key := trial_key(trial_params, stage, workdir)) is not None:
        with _KEYS_LOCK:
            _write_keys(workdir, _keys(workdir) | {f"{stage}[{trial}]": {"key": key, "run_id": run_id}})


def find_trial(
    project_root: Path, workdir: Path, trial_params: Params, stage: str
) -> tuple[Path, str, str] | None:
    """Another pipeline folder holding a trial whose ``stage`` has this trial's key: (folder, its
    trial's name, the run that made it); None when there is none."""
    if stage not in TRIAL_REUSABLE or (key := trial_key(trial_params, stage, workdir)) is None:
        return None
    for other in _other_folders(project_root, workdir):
        for name, entry in sorted(_keys(other).items()):
            trial = name[len(stage) + 1 : -1]
            if name.startswith(f"{stage}[") and entry.get("key") == key and entry.get("run_id"):
                if all(p.exists() for p in outputs(Workspace(other, trial), stage)):
                    return other, trial, entry["run_id"]
    return None


def copy_trial_outputs(source: Path, source_trial: str, workdir: Path, trial: str, stage: str) -> None:
    """Copies a trial's ``stage`` outputs from another pipeline folder (and trial name) to this one."""
    src_ws, dst_ws = Workspace(source, source_trial), Workspace(workdir, trial)
    bases = [
        (src_ws.hfsl_rounds.parent.parent, dst_ws.hfsl_rounds.parent.parent),  # the trial's artifacts
        (src_ws.metrics, dst_ws.metrics),
        (src_ws.plots, dst_ws.plots),
    ]
    for src in outputs(src_ws, stage):
        src_base, dst_base = next((a, b) for a, b in bases if a in src.parents)
        _copy(src, dst_base / src.relative_to(src_base))


def _keys(workdir: Path) -> dict[str, dict[str, str]]:
    path = workdir / KEYS
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


_KEYS_LOCK = threading.RLock()  # trials side by side record their keys from their own threads


def _write_keys(workdir: Path, keys: dict[str, dict[str, str]]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / (KEYS + ".tmp")
    tmp.write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, workdir / KEYS)


def forget(workdir: Path, stage: str) -> None:
    """``stage`` is about to rewrite its outputs in ``workdir``: it and every stage downstream of
    it stop being offered for reuse."""
    gone = {stage} | {s for s, up in UPSTREAM.items() if up == stage}
    gone |= {s for s, up in UPSTREAM.items() if up in gone}
    with _KEYS_LOCK:
        keys = _keys(workdir)
        if gone & set(keys):
            _write_keys(workdir, {s: v for s, v in keys.items() if s not in gone})


def remember(workdir: Path, params: Params, stage: str, run_id: str) -> None:
    """``stage`` finished in ``workdir`` (MLflow run ``run_id``): offer its outputs for reuse."""
    if stage in REUSABLE:
        with _KEYS_LOCK:
            _write_keys(
                workdir, _keys(workdir) | {stage: {"key": stage_key(params, stage), "run_id": run_id}}
            )


def find(project_root: Path, workdir: Path, params: Params, stage: str) -> tuple[Path, str] | None:
    """Another pipeline folder under ``runs/`` holding ``stage``'s outputs for these params, with
    the run that made them; None when there is none."""
    key = stage_key(params, stage)
    for other in _other_folders(project_root, workdir):
        entry = _keys(other).get(stage)
        if entry and entry.get("key") == key and all(p.exists() for p in outputs(Workspace(other), stage)):
            return other, entry.get("run_id", "")
    return None


def _other_folders(project_root: Path, workdir: Path) -> list[Path]:
    """The pipeline folders under ``runs/`` other than ``workdir``, by name."""
    runs = project_root / "runs"
    found = sorted(runs.iterdir()) if runs.is_dir() else []
    return [p for p in found if p.is_dir() and p.resolve() != workdir.resolve()]


def copy_outputs(source: Path, workdir: Path, stage: str) -> None:
    """Copies ``stage``'s outputs from one pipeline folder to another (replacing what was there)."""
    for src, dst in zip(outputs(Workspace(source), stage), outputs(Workspace(workdir), stage), strict=True):
        _copy(src, dst)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_dir():
        shutil.rmtree(dst)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
