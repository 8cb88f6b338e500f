"""The gate stage: each edge's new modules (the challenger) scored beside the served ones.

Challenger: the modules HFSL just produced (the edge fine-tune's where the pipeline runs no
HFSL).  Champion: the modules the edge serves (fetched from the registry before the run; none
on a stream's first run).  Both on the FM of this run, on the fixed held-out test set and on the
newest increment's test slice; :func:`ecogen.stream.gate.decide` says whether to promote.  The
edge's first modules (the frozen reference) and the challenger on the first increment's slice
(forgetting) are scored too.  Writes ``artifacts/gate/<domain>.json``; the registry is moved by
the caller, never here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ecogen.config.params import Params
from ecogen.data.prepared import PreparedData, Split
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import MaskedAutoencoder
from ecogen.peft.edge import load_edge_model
from ecogen.stages.common import edge_seed
from ecogen.stages.result import StageResult, combine
from ecogen.stream.gate import Scores, decide
from ecogen.training.classifier import evaluate
from ecogen.workspace import Workspace

log = logging.getLogger("ecogen.gate")


def gate(params: Params, ws: Workspace) -> StageResult:
    data = PreparedData(ws.data)
    fm = load_fm(ws.fm)
    ws.gate.mkdir(parents=True, exist_ok=True)
    return combine("gate", [_gate_edge(params, ws, data, fm, domain) for domain in params.data.domains])


def _gate_edge(
    params: Params, ws: Workspace, data: PreparedData, fm: MaskedAutoencoder, domain: str
) -> StageResult:
    state, s = data.stream, params.stream
    fixed = data.test(domain)
    newest = data.increment_test(domain, state.newest) if state else fixed

    def accuracy(path: Path, split: Split) -> float:
        model = load_edge_model(fm, params.peft, path, edge_seed(params, domain))
        return evaluate(model, split, params.inference.batch_size, params.accelerator)

    def scores(path: Path) -> Scores:
        return Scores(fixed=accuracy(path, fixed), newest=accuracy(path, newest))

    made = ws.hfsl(domain) / "tunable.pt"
    made = made if made.is_file() else ws.edge(domain) / "tunable.pt"
    challenger = scores(made)
    champion = scores(ws.champion(domain)) if ws.champion(domain).is_file() else None
    decision = decide(challenger, champion, s.promote_margin, s.max_forgetting)
    metrics = {
        "challenger_fixed": challenger.fixed,
        "challenger_newest": challenger.newest,
        "challenger_first_increment": accuracy(made, data.increment_test(domain, 0))
        if state
        else challenger.fixed,
        "promoted": float(decision.promote),
    }
    if champion is not None:
        metrics |= {"champion_fixed": champion.fixed, "champion_newest": champion.newest}
    # what the edge serves after this run: the challenger if promoted, else the champion it kept
    kept = ws.champion(domain) if champion is not None and not decision.promote else made
    served = challenger if kept == made else champion
    assert served is not None
    metrics |= {
        "served_fixed": served.fixed,
        "served_newest": served.newest,
        "served_first_increment": metrics["challenger_first_increment"]
        if kept == made
        else accuracy(kept, data.increment_test(domain, 0) if state else fixed),
    }
    if ws.first(domain).is_file():  # the stream's frozen reference: its first modules, never updated
        frozen = scores(ws.first(domain))
        metrics |= {"frozen_fixed": frozen.fixed, "frozen_newest": frozen.newest}
    record = {
        "domain": domain,
        "increment": state.newest if state else None,
        "promote": decision.promote,
        "reason": decision.reason,
        "metrics": metrics,
    }
    (ws.gate / f"{domain}.json").write_text(json.dumps(record, indent=2) + "\n")
    verdict = "PROMOTE" if decision.promote else "keep the champion"
    log.info("gate[%s]: %s — %s", domain, verdict, decision.reason)
    return StageResult(name=f"edge-{domain}", metrics=metrics, params={"gate_reason": decision.reason[:500]})
