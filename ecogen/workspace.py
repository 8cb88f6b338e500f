"""Where a run's files live. `dvc repro` uses the project root; `ecogen run P` uses runs/P/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """``trial``: a row × replicate of an experiment pipeline; its stage outputs (not the shared
    data, FM and edge modules they start from) go to ``trials/<trial>/`` subfolders.

    ``cycle``: cycle k of the knowledge-flow loop (deliver → finetune → hfsl → relay); its outputs
    go to ``cycles/<k>/`` subfolders, and from cycle 1 on the FM it starts from is the one the
    previous cycle's relay produced, and the edges warm-start from their previous modules."""

    root: Path
    trial: str | None = None
    cycle: int | None = None

    def _out(self, base: Path) -> Path:
        if self.trial:
            return base / "trials" / self.trial
        return base / "cycles" / str(self.cycle) if self.cycle is not None else base

    def _cycle(self, k: int) -> Path:
        return self.artifacts / "cycles" / str(k)

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
    def fm(self) -> Path:  # the FM delivered to the edges: pre-trained, or the last relay's
        if self.cycle:
            return self._cycle(self.cycle - 1) / "relay" / "fm.pt"
        return self.artifacts / "fm.pt"

    def edge(self, domain: str) -> Path:
        base = self._cycle(self.cycle) if self.cycle is not None else self.artifacts
        return base / "edges" / domain

    def warm_start(self, domain: str) -> Path | None:
        """The modules an edge re-adapts from: after a redelivery, its previous ones (none before
        the first relay); in a stream, the champion's when one is served."""
        if self.cycle:
            return self._cycle(self.cycle - 1) / "hfsl" / domain / "tunable.pt"
        return self.champion(domain) if self.champion(domain).is_file() else None

    @property
    def served(self) -> Path:  # a stream's served models, fetched from the registry before a run
        return self.root / "served"

    def drifted(self, domain: str) -> Path:
        """A marker the finetune stage leaves when the edge's images drifted and it re-tuned."""
        return self.edge(domain) / "drifted"

    def champion(self, domain: str) -> Path:
        """The tunable modules the edge serves now (the registry's champion), if any."""
        return self.served / "champion" / domain / "tunable.pt"

    def first(self, domain: str) -> Path:
        """The edge's first registered modules (the stream's frozen reference), if any."""
        return self.served / "first" / domain / "tunable.pt"

    @property
    def gate(self) -> Path:  # the gate's decision per edge (<domain>.json)
        return self.artifacts / "gate"

    @property
    def relay(self) -> Path:  # the relayed FM (fm.pt) and the naive relay's model
        return self._out(self.artifacts) / "relay"

    def hfsl(self, domain: str) -> Path:
        return self._out(self.artifacts) / "hfsl" / domain

    @property
    def hfsl_rounds(self) -> Path:  # the HFSL run's round checkpoint, while it runs
        return self._out(self.artifacts) / "hfsl" / ".rounds.pt"
