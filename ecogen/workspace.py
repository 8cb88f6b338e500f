"""Where a run's files live. `dvc repro` uses the project root; `ecogen run P` uses runs/P/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """``trial``: a row × replicate of an experiment pipeline; its stage outputs (not the shared
    data, FM and edge modules they start from) go to ``trials/<trial>/`` subfolders."""

    root: Path
    trial: str | None = None

    def _out(self, base: Path) -> Path:
        return base / "trials" / self.trial if self.trial else base

    @property
    def data(self) -> Path:  # prepared, DVC-versioned partitions
        return self.root / "data"

    @property
    def artifacts(self) -> Path:  # fm.pt, edges/<domain>/, hfsl/<domain>/
        return self.root / "artifacts"

    @property
    def metrics(self) -> Path:  # <stage>.json, read by `dvc metrics show`
        return self._out(self.root / "metrics")

    @property
    def plots(self) -> Path:  # PNG and CSV plots, read by `dvc plots show`
        return self._out(self.root / "plots")

    @property
    def fm(self) -> Path:
        return self.artifacts / "fm.pt"

    def edge(self, domain: str) -> Path:
        return self.artifacts / "edges" / domain

    def hfsl(self, domain: str) -> Path:
        return self._out(self.artifacts) / "hfsl" / domain
