"""What `dvc metrics show` and `dvc plots show` list: the last run's metrics and plots.

dvc.yaml's top-level ``metrics:`` and ``plots:`` name ``metrics/dvc/`` and ``plots/dvc/`` at the
project root, and both ways to run rewrite them: ``ecogen run P`` when it finishes (from
``runs/P/``), ``ecogen stage S`` — what ``dvc repro`` runs — after its stage (from the project
root, where the stages write).  No stage declares them as outputs, so writing them leaves
``dvc status`` as it was.  Below ``metrics/dvc/``: a stage's few numbers
(:func:`~ecogen.stages.dvc_metrics.headline`) per metrics file of the run (``<stage>.json``, in
an experiment also ``trials/<trial>/<stage>.json``, in the loop ``cycles/<k>/<stage>.json``);
below ``plots/dvc/``: a copy of each of its PNG plots, at the same places.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path

from ecogen.stages.dvc_metrics import write_headline

SHOWN = "dvc"  # metrics/dvc/ and plots/dvc/


def shown_metrics(project_root: Path) -> Path:
    return project_root / "metrics" / SHOWN


def shown_plots(project_root: Path) -> Path:
    return project_root / "plots" / SHOWN


def _label_suffix(rel: Path) -> str | None:
    """How a stage run writing in this folder is labelled after its stage (``hfsl[row-r0]``,
    ``relay[cycle 1]``); None for a folder no stage writes in (``dvc/``, the shown copy)."""
    parts = rel.parts
    if not parts:
        return ""
    if len(parts) == 2 and parts[0] in ("trials", "cycles"):
        return f"[{parts[1]}]" if parts[0] == "trials" else f"[cycle {parts[1]}]"
    return None


def _files(folder: Path, pattern: str) -> Iterator[tuple[Path, Path, str]]:
    """(file, its folder relative to ``folder``, its label suffix) below ``folder``."""
    for path in sorted(folder.rglob(pattern)) if folder.is_dir() else []:
        rel = path.parent.relative_to(folder)
        if (suffix := _label_suffix(rel)) is not None:
            yield path, rel, suffix


def show_last_run(workdir: Path, project_root: Path, labels: Collection[str] | None = None) -> None:
    """Rewrite ``metrics/dvc/`` and ``plots/dvc/`` of the project from the run whose files are in
    ``workdir``: ``runs/P`` or the project root.  ``labels``: the run's stage runs as
    :meth:`~ecogen.pipeline.RunContext.stage_label` names them (``hfsl``, ``hfsl[row-r0]``), so
    what an earlier run left in ``workdir`` (a trial this run does not have) is not shown; None:
    every file there."""
    metrics = [
        (path.stem, json.loads(path.read_text()), rel)
        for path, rel, suffix in _files(workdir / "metrics", "*.json")
        if labels is None or f"{path.stem}{suffix}" in labels
    ]
    plots = [
        (path, rel)
        for path, rel, suffix in _files(workdir / "plots", "*.png")
        if labels is None or not suffix or any(label.endswith(suffix) for label in labels)
    ]
    metrics_to, plots_to = shown_metrics(project_root), shown_plots(project_root)
    for folder in (metrics_to, plots_to):
        shutil.rmtree(folder, ignore_errors=True)
    for stage, values, rel in metrics:
        write_headline(stage, values, metrics_to / rel / f"{stage}.json")
    for path, rel in plots:
        (plots_to / rel).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, plots_to / rel / path.name)
