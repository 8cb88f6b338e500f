"""Where a run's files live. `dvc repro` uses the project root; `ecogen run P` uses runs/P/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def data(self) -> Path:  # prepared, DVC-versioned partitions
        return self.root / "data"

    @property
    def artifacts(self) -> Path:  # fm.pt, edges/<domain>/, hfsl/<domain>/
        return self.root / "artifacts"

    @property
    def metrics(self) -> Path:  # <stage>.json, read by `dvc metrics show`
        return self.root / "metrics"

    @property
    def plots(self) -> Path:  # PNG and CSV plots, read by `dvc plots show`
        return self.root / "plots"

    @property
    def fm(self) -> Path:
        return self.artifacts / "fm.pt"

    def edge(self, domain: str) -> Path:
        return self.artifacts / "edges" / domain

    def hfsl(self, domain: str) -> Path:
        return self.artifacts / "hfsl" / domain
